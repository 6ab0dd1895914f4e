//! The attacks of IKEv1's CVE history, replayed against a real daemon over real UDP in
//! network namespaces (`-n`: the daemon's own SA table is what is checked). East and west
//! are up with RSA signatures; the attacker speaks from east's address, as anyone behind
//! the same NAT could, from a port of its own. With RSA signatures it completes Main Mode
//! messages 1 to 4 and holds the keys of an ISAKMP SA that proves nothing (the scripted
//! initiator of ike's own tests, included by path, over a UDP socket). Each test: west
//! names what it refused, answers nothing it should not, stays up, and keeps the ISAKMP SA
//! and IPsec SAs it had with east exactly as they were.

#[path = "../../ike/tests/scripted/mod.rs"]
mod scripted;

use e2e::pair::*;
use ike::codec::{
    flags, Attribute, AttributeValue, ExchangeType, Header, IdPayload, Identity, Message,
    NotifyType, Payload, PayloadType,
};
use ike::crypto::{EncrAlg, Group, HashAlg};
use ike::policy::{
    phase1_sa, AuthMethod, Credentials, DpdAction, LifetimeRange, Peer, Phase1Mode, Phase1Transform,
};
use openssl::pkey::{PKey, Private};
use scripted::{delete_esp, delete_isakmp, notify, ScriptedInitiator, Wire};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// What west says of an Informational in cleartext, and of one under an ISAKMP SA past
/// message 4 but not authenticated.
const UNAUTH_CLEAR: &str = "unauthenticated Informational from 192.0.2.1:40500 (peer peer-east)";
const UNAUTH_ENC: &str =
    "Informational from 192.0.2.1:40500 under an ISAKMP SA not yet authenticated";

/// The attacker's port on east's address (east's daemon has 500 and 4500).
const ATTACKER_PORT: u16 = 40_500;

/// How long to wait for the daemon's answers to one message: its crypto (a MODP2048
/// derive) takes milliseconds; its first retransmission comes seconds later.
const SETTLE: Duration = Duration::from_millis(400);

/// The scripted initiator's wire: a UDP socket in east's namespace.
struct UdpWire(UdpSocket);

impl Wire for UdpWire {
    fn exchange(&mut self, from: SocketAddr, to: SocketAddr, bytes: &[u8]) -> Vec<Vec<u8>> {
        assert_eq!(
            self.0.local_addr().ok(),
            Some(from),
            "the wire sends from its socket"
        );
        self.0.send_to(bytes, to).expect("send to west");
        let end = Instant::now() + SETTLE;
        let mut got = Vec::new();
        let mut buf = vec![0u8; 65_536];
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            if left.is_zero() || self.0.set_read_timeout(Some(left)).is_err() {
                break;
            }
            match self.0.recv_from(&mut buf) {
                Ok((n, src)) if src == to => got.push(buf[..n].to_vec()),
                Ok(_) => {}
                Err(_) => break,
            }
        }
        got
    }
}

/// West's ISAKMP SA with east (its report line) and its IPsec SA lines, each cut before
/// the remaining lifetime, which changes by itself.
#[derive(Debug, PartialEq)]
struct Held {
    phase1: Vec<String>,
    phase2: Vec<String>,
}

fn report(d: &e2e::daemon::Daemon) -> String {
    let path = d.dir.join("isakmpd.report");
    let _ = std::fs::remove_file(&path);
    d.signal("USR1");
    let mut text = String::new();
    e2e::wait_until(Duration::from_secs(10), || {
        text = std::fs::read_to_string(&path).unwrap_or_default();
        text.contains("Pending timers:")
    });
    text
}

fn held(d: &e2e::daemon::Daemon) -> Held {
    let text = report(d);
    let cut = |l: &str| l.split("expires in").next().unwrap_or(l).trim().to_string();
    Held {
        phase1: text
            .lines()
            .filter(|l| l.trim_start().starts_with(WEST_PEER_SECTION) && l.contains("cookies"))
            .map(cut)
            .collect(),
        phase2: text
            .lines()
            .filter(|l| l.trim_start().starts_with(WEST_CONNECTION) && l.contains("Esp in"))
            .map(cut)
            .collect(),
    }
}

/// East and west up with RSA signatures, what west holds, and the attacker's socket.
struct Scene {
    pair: Pair,
    before: Held,
    wire: UdpWire,
    /// West's ISAKMP SA with east, as a Delete or Notify names it (CKY-I | CKY-R).
    isakmp_spi: Vec<u8>,
    /// The SPIs of west's IPsec SA with east, in and out.
    esp_spis: Vec<u32>,
    /// East's private key, which the tests that authenticate as east sign with.
    east_key: PKey<Private>,
}

fn scene(tag: &str) -> Scene {
    let (east_key, east_pub) = rsa_keypair(2048).expect("east's key");
    let (west_key, west_pub) = rsa_keypair(2048).expect("west's key");
    let mut pair = Pair::start_rsa(
        tag,
        (&east_key, &west_pub),
        (&west_key, &east_pub),
        &["-n", "-v", "-j", "1"],
    )
    .expect("start the pair");
    if let Err(e) = pair.wait_up(Duration::from_secs(20)) {
        panic!("{e}\n{}", pair.logs());
    }
    let before = held(&pair.west);
    assert_eq!(
        (before.phase1.len(), before.phase2.len()),
        (1, 1),
        "{before:?}\n{}",
        pair.logs()
    );
    let cookies = before.phase1[0]
        .split("cookies ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .expect("cookies in the report");
    let isakmp_spi = hex(&cookies.replace(':', ""));
    let esp_spis = before.phase2[0]
        .split_whitespace()
        .collect::<Vec<_>>()
        .windows(2)
        .filter(|w| w[0] == "in" || w[0] == "out")
        .filter_map(|w| u32::from_str_radix(w[1].trim_start_matches("0x"), 16).ok())
        .collect();
    let from = SocketAddr::new(ip(EAST_ADDR), ATTACKER_PORT);
    let wire = UdpWire(pair.ns_east.udp_socket(from).expect("attacker socket"));
    Scene {
        pair,
        before,
        wire,
        isakmp_spi,
        esp_spis,
        east_key: PKey::private_key_from_pem(&east_key).expect("east's key"),
    }
}

impl Scene {
    /// A scripted initiator from the attacker's socket, offering what west expects of east.
    fn attacker(&self, icookie: [u8; 8]) -> ScriptedInitiator {
        ScriptedInitiator::new(
            self.wire.0.local_addr().expect("local address"),
            SocketAddr::new(ip(WEST_ADDR), 500),
            &east_as_west_sees_it(),
            icookie,
        )
    }

    /// One scripted initiator through message 4: it holds keys that prove nothing.
    fn through_mm4(&mut self, icookie: [u8; 8]) -> ScriptedInitiator {
        let mut x = self.attacker(icookie);
        x.through_mm4(&mut self.wire, 32)
            .unwrap_or_else(|e| panic!("MM1-4: {e}\n{}", self.pair.logs()));
        x
    }

    /// East's identity as its ID payload carries it (its address, UDP port 500).
    fn east_id() -> IdPayload {
        IdPayload {
            protocol: 17,
            port: 500,
            identity: Identity::Ipv4(EAST_ADDR.parse().expect("address")),
        }
    }

    /// A scripted initiator through message 5 with a signature `sign` makes of HASH_I
    /// (given east's key); west's answers to message 5.
    fn mm5(
        &mut self,
        icookie: [u8; 8],
        sign: impl FnOnce(&PKey<Private>, &[u8]) -> Vec<u8>,
    ) -> (ScriptedInitiator, Vec<scripted::Reply>) {
        let mut x = self.through_mm4(icookie);
        let key = &self.east_key;
        let got = x
            .mm5(&mut self.wire, Self::east_id(), |h| sign(key, h))
            .expect("MM5");
        (x, got)
    }

    /// A scripted initiator that authenticates as east with east's own key (a peer that
    /// holds its credentials and misbehaves afterwards), from the attacker's port.
    fn authenticated(&mut self, icookie: [u8; 8]) -> ScriptedInitiator {
        let (x, got) = self.mm5(icookie, |key, h| {
            ike::crypto::rsa_sign(key, h).expect("sign")
        });
        assert!(
            got.iter()
                .any(|r| r.header.exchange == ExchangeType::MAIN_MODE),
            "no message 6\n{}",
            self.pair.logs()
        );
        let line = format!("phase 1 established with peer-east ({EAST_ADDR}:{ATTACKER_PORT})");
        assert!(
            e2e::wait_until(Duration::from_secs(5), || self.pair.west.log_count(&line)
                >= 1),
            "west never said {line:?}\n{}",
            self.pair.logs()
        );
        x
    }

    /// Sends raw bytes to west from the attacker's socket; what came back.
    fn raw(&mut self, bytes: &[u8]) -> Vec<Vec<u8>> {
        let from = self.wire.0.local_addr().expect("local address");
        self.wire
            .exchange(from, SocketAddr::new(ip(WEST_ADDR), 500), bytes)
    }

    /// West said each of `lines` at least once, is still running, and still holds every SA
    /// it held with east, unchanged.
    fn assert_intact(&mut self, lines: &[&str]) {
        for line in lines {
            let found = e2e::wait_until(Duration::from_secs(5), || {
                self.pair.west.log_count(line) >= 1
            });
            assert!(found, "west never said {line:?}\n{}", self.pair.logs());
        }
        let logs = self.pair.logs();
        assert!(self.pair.west.try_exit().is_none(), "west exited\n{logs}");
        assert!(self.pair.east.try_exit().is_none(), "east exited\n{logs}");
        let after = held(&self.pair.west);
        let kept = |now: &[String], then: &[String]| then.iter().all(|l| now.contains(l));
        assert!(
            kept(&after.phase1, &self.before.phase1) && kept(&after.phase2, &self.before.phase2),
            "west's SAs with east changed: before {:?}, after {after:?}\n{}",
            self.before,
            self.pair.logs()
        );
    }
}

/// Answers that are Informational messages (a phase-1 retransmission to the attacker,
/// who did answer our first message, is not one).
fn informational(replies: &[scripted::Reply]) -> Vec<&scripted::Reply> {
    replies
        .iter()
        .filter(|r| r.header.exchange == ExchangeType::INFORMATIONAL)
        .collect()
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("address")
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .filter_map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok())
        .collect()
}

/// East as west's configuration describes it: what east itself offers in message 1
/// (AES-256, SHA2-256, MODP2048, RSA signatures, Main Mode, 3600 s).
fn east_as_west_sees_it() -> Peer {
    Peer {
        name: WEST_PEER_SECTION.into(),
        address: SocketAddr::new(ip(EAST_ADDR), 500),
        local_address: None,
        mode: Phase1Mode::Main,
        transforms: vec![Phase1Transform {
            name: "AES-256-SHA2-256-GRP14-RSA_SIG".into(),
            encr: EncrAlg::AesCbc256,
            hash: HashAlg::Sha256,
            group: Group::Modp2048,
            auth: AuthMethod::RsaSig,
            lifetime: LifetimeRange {
                default: 3600,
                min: 60,
                max: 86_400,
            },
        }],
        credentials: Credentials::RsaSig {
            secret: String::new(),
            peer_public_key: None,
        },
        local_id: None,
        remote_id: None,
        dpd_interval: 0,
        dpd_timeout: None,
        dpd_action: DpdAction::Clear,
        nat_t: false,
    }
}

fn cleartext_informational(icookie: [u8; 8], rcookie: [u8; 8], payloads: Vec<Payload>) -> Vec<u8> {
    Message {
        header: Header {
            initiator_cookie: ike::codec::Cookie(icookie),
            responder_cookie: ike::codec::Cookie(rcookie),
            next_payload: PayloadType::NONE,
            version: 0x10,
            exchange: ExchangeType::INFORMATIONAL,
            flags: 0,
            message_id: 0x1bad_f00d,
            length: 0,
        },
        payloads,
    }
    .emit()
    .expect("emit")
}

fn split_cookies(spi: &[u8]) -> ([u8; 8], [u8; 8]) {
    let mut i = [0u8; 8];
    let mut r = [0u8; 8];
    i.copy_from_slice(&spi[..8]);
    r.copy_from_slice(&spi[8..16]);
    (i, r)
}

fn r_u_there(spi: Vec<u8>, seq: u32) -> Payload {
    Payload::Notify(ike::codec::NotifyPayload {
        doi: ike::codec::DOI_IPSEC,
        protocol: ike::codec::ProtocolId::ISAKMP,
        spi,
        notify_type: NotifyType::R_U_THERE,
        data: seq.to_be_bytes().to_vec(),
    })
}

/// Each unauthenticated way to carry `payload` (built for west's ISAKMP SA with east and
/// its ESP SPIs): in cleartext with no exchange at all under the cookies of west's SA with
/// east, in cleartext under the attacker's own half-open exchange (after message 2), and
/// encrypted under the attacker's own ISAKMP SA (after message 4). None is answered.
fn before_and_after_message_4(tag: &str, payload: impl Fn(&Scene) -> Payload) -> Scene {
    let mut s = scene(tag);
    let (i, r) = split_cookies(&s.isakmp_spi);
    let p = payload(&s);
    let got = s.raw(&cleartext_informational(i, r, vec![p.clone()]));
    assert!(got.is_empty(), "answered in cleartext: {got:?}");
    let mut x = s.attacker(*b"hostile1");
    x.mm1(&mut s.wire).expect("MM1-2");
    let got = s.raw(&cleartext_informational(
        x.icookie.0,
        x.rcookie.0,
        vec![p.clone()],
    ));
    assert!(got.is_empty(), "answered after message 2: {got:?}");
    let x = s.through_mm4(*b"hostile2");
    let got = x
        .informational(&mut s.wire, 0x0bad_cafe, vec![p])
        .expect("encrypted informational");
    let got = informational(&got);
    assert!(got.is_empty(), "answered after message 4: {got:?}");
    s
}

#[test]
fn an_unauthenticated_delete_before_and_after_message_4_deletes_nothing() {
    e2e::require_env!();
    let mut s = before_and_after_message_4("hdel", |s| delete_isakmp(vec![s.isakmp_spi.clone()]));
    s.assert_intact(&[UNAUTH_CLEAR, UNAUTH_ENC]);
    let mut s = before_and_after_message_4("hdesp", |s| delete_esp(&s.esp_spis));
    s.assert_intact(&[UNAUTH_CLEAR, UNAUTH_ENC]);
}

#[test]
fn an_unauthenticated_notify_before_and_after_message_4_changes_nothing() {
    e2e::require_env!();
    let mut s = before_and_after_message_4("hnot", |s| {
        notify(NotifyType::INVALID_SPI, s.isakmp_spi.clone())
    });
    s.assert_intact(&[UNAUTH_CLEAR, "INVALID-SPI"]);
}

#[test]
fn an_unauthenticated_initial_contact_before_and_after_message_4_deletes_nothing() {
    e2e::require_env!();
    let mut s = before_and_after_message_4("hini", |s| {
        notify(NotifyType::INITIAL_CONTACT, s.isakmp_spi.clone())
    });
    s.assert_intact(&[UNAUTH_CLEAR, UNAUTH_ENC]);
}

/// R-U-THERE for cookies west has never seen, in cleartext and with the encryption flag
/// over garbage, and under the attacker's unauthenticated ISAKMP SA with sequence numbers
/// that were never sent: none is answered, so none can be reflected.
#[test]
fn dpd_with_unknown_cookies_or_a_bad_sequence_number_is_not_answered() {
    e2e::require_env!();
    let mut s = scene("hdpd");
    let unknown = [*b"unknown!", *b"cookies!"];
    let got = s.raw(&cleartext_informational(
        unknown[0],
        unknown[1],
        vec![r_u_there(unknown.concat(), 1)],
    ));
    assert!(got.is_empty(), "cleartext R-U-THERE answered: {got:?}");
    let mut garbage =
        cleartext_informational(unknown[0], unknown[1], vec![r_u_there(unknown.concat(), 1)]);
    garbage[19] |= flags::ENCRYPTION;
    let got = s.raw(&garbage);
    assert!(got.is_empty(), "encrypted-flag garbage answered: {got:?}");
    let x = s.through_mm4(*b"hostile3");
    for seq in [0, 7, u32::MAX] {
        let got = x
            .informational(
                &mut s.wire,
                0x0bad_0000 | (seq % 256),
                vec![r_u_there(x.isakmp_spi(), seq)],
            )
            .expect("R-U-THERE");
        let got = informational(&got);
        assert!(
            got.is_empty(),
            "R-U-THERE {seq} under an unauthenticated SA answered: {got:?}"
        );
    }
    s.assert_intact(&[UNAUTH_ENC]);
}

/// Message 3 with a KE of 0, 1 or p-1 (each the right length): the shared secret would be
/// known to anyone. West refuses each by name and sends no message 4.
#[test]
fn ke_values_0_1_and_p_minus_1_are_refused() {
    e2e::require_env!();
    let mut s = scene("hke");
    let p = openssl::bn::BigNum::get_rfc3526_prime_2048().expect("MODP2048 prime");
    let mut p_minus_1 = p.to_vec();
    if let Some(last) = p_minus_1.last_mut() {
        *last -= 1; // p is odd: no borrow
    }
    let value = |last: u8| {
        let mut v = vec![0u8; 256];
        v[255] = last;
        v
    };
    for (n, ke) in [value(0), value(1), p_minus_1].into_iter().enumerate() {
        let mut x = s.attacker([b'k', b'e', 0, 0, 0, 0, 0, n as u8]);
        x.mm1(&mut s.wire).expect("MM1-2");
        let got = x.mm3(&mut s.wire, vec![0x5a; 32], Some(ke)).expect("MM3");
        assert!(!got.iter().any(|r| r.is_mm4()), "message 4 for KE {n}");
    }
    s.assert_intact(&["refused (invalid Diffie-Hellman public value: not in 1 < y < p-1)"]);
}

/// Nonces of 0 and 300 bytes (RFC 2409: 8 to 256): refused by name, no message 4.
#[test]
fn nonces_of_0_and_300_bytes_are_refused() {
    e2e::require_env!();
    let mut s = scene("hnon");
    for len in [0usize, 300] {
        let mut x = s.attacker([b'n', b'o', 0, 0, 0, 0, 0, len as u8]);
        x.mm1(&mut s.wire).expect("MM1-2");
        let got = x.mm3(&mut s.wire, vec![0x5a; len], None).expect("MM3");
        assert!(
            !got.iter().any(|r| r.is_mm4()),
            "message 4 for a {len}-byte nonce"
        );
    }
    s.assert_intact(&["nonce of 300 bytes", "nonce of 0 bytes"]);
}

/// An offer of Diffie-Hellman group 1025 (a private-use number we have no group for):
/// no message 2, and a line that says why.
#[test]
fn group_1025_is_not_chosen() {
    e2e::require_env!();
    let mut s = scene("hgrp");
    let mut offer = phase1_sa(&east_as_west_sees_it());
    for t in offer
        .proposals
        .iter_mut()
        .flat_map(|p| p.transforms.iter_mut())
    {
        for a in t.attributes.iter_mut() {
            // Group Description (RFC 2409 appendix A: class 4).
            if a.kind == 4 {
                a.value = AttributeValue::Basic(1025);
            }
        }
        assert!(t.attributes.contains(&Attribute::basic(4, 1025)));
    }
    let mut x = s.attacker(*b"group102");
    assert!(
        x.mm1_with(&mut s.wire, offer).is_err(),
        "message 2 for group 1025"
    );
    s.assert_intact(&["no proposal chosen: peer offered [AES-256-SHA2_256-group#1025-RSA_SIG"]);
}

/// Length fields larger than the datagram: the header's, a payload's, and an SA
/// payload's proposal; and datagrams too short for a header. Each is dropped.
#[test]
fn length_fields_larger_than_the_datagram_are_dropped() {
    e2e::require_env!();
    let mut s = scene("hlen");
    let mut x = s.attacker(*b"lengths!");
    let sa = Message {
        header: Header {
            initiator_cookie: x.icookie,
            responder_cookie: ike::codec::Cookie::default(),
            next_payload: PayloadType::NONE,
            version: 0x10,
            exchange: ExchangeType::MAIN_MODE,
            flags: 0,
            message_id: 0,
            length: 0,
        },
        payloads: vec![Payload::Sa(phase1_sa(&east_as_west_sees_it()))],
    }
    .emit()
    .expect("emit");
    let mut header_long = sa.clone();
    header_long[24..28].copy_from_slice(&0xffffu32.to_be_bytes());
    let mut payload_long = sa.clone();
    payload_long[30..32].copy_from_slice(&0xfff0u16.to_be_bytes());
    let mut proposal_long = sa.clone();
    // SA payload: 4 generic header, 4 DOI, 4 situation; the proposal's length follows its
    // own 2 bytes of next payload and reserved.
    proposal_long[28 + 12 + 2..28 + 12 + 4].copy_from_slice(&0xfff0u16.to_be_bytes());
    for (what, bytes) in [
        ("header length", header_long),
        ("payload length", payload_long),
        ("proposal length", proposal_long),
        ("one byte", vec![0x10]),
        ("27 bytes", sa[..27].to_vec()),
    ] {
        let got = s.raw(&bytes);
        assert!(got.is_empty(), "{what}: answered {got:?}");
    }
    // And the honest message 1 is still answered: none of that left state behind.
    x.mm1(&mut s.wire).expect("an honest message 1 after them");
    s.assert_intact(&[
        "header length 65535 but datagram is 84 bytes",
        "GenericHeader: bad length 65520 (56 bytes available)",
        "Proposal: bad length 65520 (44 bytes available)",
        "Header: truncated, need 8 bytes, have 1",
        "Header: truncated, need 4 bytes, have 3",
    ]);
}

/// The raw RSA private operation on `block` (no padding): a signature of whatever block
/// the caller makes, so a forgery can be exactly what a lax verifier would accept.
fn raw_rsa(key: &PKey<Private>, block: &[u8]) -> Vec<u8> {
    let rsa = key.rsa().expect("an RSA key");
    let mut out = vec![0u8; rsa.size() as usize];
    let n = rsa
        .private_encrypt(block, &mut out, openssl::rsa::Padding::NONE)
        .expect("raw RSA");
    out.truncate(n);
    out
}

/// A PKCS#1 block of `len` bytes: 00 `block_type` FF.. 00 `content`.
fn pkcs1_block(len: usize, block_type: u8, content: &[u8]) -> Vec<u8> {
    let mut b = vec![0xff; len];
    b[0] = 0;
    b[1] = block_type;
    let at = len - content.len() - 1;
    b[at] = 0;
    b[at + 1..].copy_from_slice(content);
    b
}

/// Message 5 with signatures made by east's own private key over blocks a strict PKCS#1
/// verifier refuses: block type 2, HASH_I followed by garbage (the shape of the e=3
/// forgeries, here with the real exponent, since west refuses e=3 keys), HASH_I behind a
/// SHA-256 DigestInfo (IKEv1 signs the bare hash), a signature of another hash, and
/// random bytes. None authenticates: no message 6, and west says why.
#[test]
fn forged_rsa_signatures_in_message_5_are_refused() {
    e2e::require_env!();
    let mut s = scene("hsig");
    type Forge = fn(&PKey<Private>, &[u8]) -> Vec<u8>;
    let forgeries: [(&str, Forge); 5] = [
        ("block type 2", |k, h| raw_rsa(k, &pkcs1_block(256, 2, h))),
        ("garbage after the hash", |k, h| {
            let mut content = h.to_vec();
            content.extend_from_slice(&[0x5a; 40]);
            raw_rsa(k, &pkcs1_block(256, 1, &content))
        }),
        ("a DigestInfo around the hash", |k, h| {
            let mut content = vec![
                0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x01, 0x05, 0x00, 0x04, 0x20,
            ];
            content.extend_from_slice(h);
            raw_rsa(k, &pkcs1_block(256, 1, &content))
        }),
        ("another hash", |k, h| {
            let mut other = h.to_vec();
            other[0] ^= 1;
            ike::crypto::rsa_sign(k, &other).expect("sign")
        }),
        ("random bytes", |_, _| ike::crypto::random_bytes(256)),
    ];
    for (n, (what, forge)) in forgeries.into_iter().enumerate() {
        let (_, got) = s.mm5([b'f', b'o', b'r', b'g', b'e', 0, 0, n as u8], forge);
        assert!(
            !got.iter()
                .any(|r| r.header.exchange == ExchangeType::MAIN_MODE),
            "message 6 for a signature with {what}\n{}",
            s.pair.logs()
        );
    }
    assert_eq!(
        s.pair
            .west
            .log_count("phase 1 established with peer-east (192.0.2.1:40500)"),
        0,
        "{}",
        s.pair.logs()
    );
    let refused = "RSA signature of peer peer-east is not valid: the signature does not verify with the peer's public key";
    s.assert_intact(&[refused]);
    assert_eq!(s.pair.west.log_count(refused), 5, "{}", s.pair.logs());
}

/// An authenticated peer (east's own key, from another port) deletes its own ISAKMP SA,
/// then sends the same Delete again under it: the second finds nothing, and west's SAs
/// with east (the other ISAKMP SA of the same identity) stay.
#[test]
fn a_repeated_delete_of_an_isakmp_sa_touches_nothing_else() {
    e2e::require_env!();
    let mut s = scene("hrep");
    let x = s.authenticated(*b"deleter!");
    let own = x.isakmp_spi();
    for msgid in [0x0de1_0001, 0x0de1_0002] {
        let got = x
            .informational(&mut s.wire, msgid, vec![delete_isakmp(vec![own.clone()])])
            .expect("Delete");
        assert!(informational(&got).is_empty(), "Delete answered: {got:?}");
    }
    let deleted = "phase 1 with peer-east (192.0.2.1:40500, cookies 64656c6574657221:";
    s.assert_intact(&[deleted]);
    assert_eq!(
        s.pair.west.log_count("deleted by peer"),
        1,
        "{}",
        s.pair.logs()
    );
}

/// R-U-THERE under an authenticated ISAKMP SA: sequence number 5 is answered, 5 again up
/// to three more times (OpenBSD isakmpd retransmits without a new number), then not;
/// 4 (older) and a 3-byte number never; 6 is.
#[test]
fn r_u_there_out_of_sequence_is_not_answered() {
    e2e::require_env!();
    let mut s = scene("hseq");
    let x = s.authenticated(*b"dpdpeer!");
    let spi = x.isakmp_spi();
    let mut acks = Vec::new();
    let data: [(&str, Vec<u8>); 7] = [
        ("5", 5u32.to_be_bytes().to_vec()),
        ("5 again", 5u32.to_be_bytes().to_vec()),
        ("5 a third time", 5u32.to_be_bytes().to_vec()),
        ("5 a fourth time", 5u32.to_be_bytes().to_vec()),
        ("5 a fifth time", 5u32.to_be_bytes().to_vec()),
        ("4", 4u32.to_be_bytes().to_vec()),
        ("3 bytes", vec![0, 0, 7]),
    ];
    for (i, (what, d)) in data
        .into_iter()
        .chain([("6", 6u32.to_be_bytes().to_vec())])
        .enumerate()
    {
        let n = Payload::Notify(ike::codec::NotifyPayload {
            doi: ike::codec::DOI_IPSEC,
            protocol: ike::codec::ProtocolId::ISAKMP,
            spi: spi.clone(),
            notify_type: NotifyType::R_U_THERE,
            data: d,
        });
        let got = x
            .informational(&mut s.wire, 0x0dd0_0000 + i as u32, vec![n])
            .expect("R-U-THERE");
        acks.push((what, !informational(&got).is_empty()));
    }
    let answered: Vec<_> = acks.iter().filter(|(_, a)| *a).map(|(w, _)| *w).collect();
    assert_eq!(
        answered,
        ["5", "5 again", "5 a third time", "5 a fourth time", "6"],
        "{}",
        s.pair.logs()
    );
    s.assert_intact(&[
        "R-U-THERE from peer-east with sequence number 5 repeated more than 3 times: not answered",
        "R-U-THERE from peer-east with sequence number 4, before the last answered (5): not answered",
        "R-U-THERE from peer-east with 3 bytes of sequence number: not answered",
    ]);
}

/// An ESP proposal with one transform: `transform_id` with these attributes (RFC 2407
/// 4.5: 1 life type, 2 life duration, 3 group, 4 encapsulation, 5 authentication, 6 key
/// length).
fn esp_offer(transform_id: u8, attributes: Vec<Attribute>) -> Payload {
    Payload::Sa(ike::codec::SaPayload {
        doi: ike::codec::DOI_IPSEC,
        situation: 1,
        proposals: vec![ike::codec::Proposal {
            number: 1,
            protocol: ike::codec::ProtocolId::IPSEC_ESP,
            spi: 0x1122_3344u32.to_be_bytes().to_vec(),
            transforms: vec![ike::codec::Transform {
                number: 1,
                transform_id,
                attributes,
            }],
        }],
    })
}

/// What west's suite asks for: AES-256-CBC, HMAC-SHA2-256, tunnel, PFS with MODP2048.
fn west_suite_attributes() -> Vec<Attribute> {
    vec![
        Attribute::basic(1, 1),
        Attribute::basic(2, 1200),
        Attribute::basic(3, 14),
        Attribute::basic(4, 1),
        Attribute::basic(5, 5),
        Attribute::basic(6, 256),
    ]
}

fn subnet_id(net: (&str, &str)) -> Payload {
    Payload::Id(IdPayload {
        protocol: 0,
        port: 0,
        identity: Identity::Ipv4Subnet(
            net.0.parse().expect("network"),
            net.1.parse().expect("netmask"),
        ),
    })
}

/// Quick Mode message 1 under `x`'s ISAKMP SA: `sa`, a nonce, a MODP2048 KE and `ids`.
fn quick_mode_1(
    s: &mut Scene,
    x: &ScriptedInitiator,
    message_id: u32,
    sa: Payload,
    ids: [Payload; 2],
) -> (scripted::QuickSent, Vec<u8>) {
    let (public, _) = ike::crypto::dh_keygen(Group::Modp2048).expect("keygen");
    let ni = ike::crypto::random_bytes(32);
    let [ci, cr] = ids;
    let payloads = vec![sa, Payload::Nonce(ni.clone()), Payload::Ke(public), ci, cr];
    let sent = x.qm1(&mut s.wire, message_id, payloads).expect("QM1");
    (sent, ni)
}

fn quick_answers(replies: &[scripted::Reply]) -> usize {
    replies
        .iter()
        .filter(|r| r.header.exchange == ExchangeType::QUICK_MODE)
        .count()
}

/// Quick Mode from an authenticated peer with ESP transforms we do not implement:
/// AES-GMAC (ESP transform 23) and an unknown id (250). No message 2, no SA, a line.
#[test]
fn quick_mode_with_esp_transforms_we_do_not_support_makes_no_sa() {
    e2e::require_env!();
    let mut s = scene("hesp");
    let x = s.authenticated(*b"espwrong");
    let ids = || [subnet_id(EAST_NET), subnet_id(WEST_NET)];
    let gmac = vec![
        Attribute::basic(1, 1),
        Attribute::basic(2, 1200),
        Attribute::basic(3, 14),
        Attribute::basic(4, 1),
        Attribute::basic(6, 256),
    ];
    for (n, (id, attrs)) in [(23u8, gmac), (250u8, west_suite_attributes())]
        .into_iter()
        .enumerate()
    {
        let (sent, _) = quick_mode_1(
            &mut s,
            &x,
            0x0e5b_0000 + n as u32,
            esp_offer(id, attrs),
            ids(),
        );
        assert_eq!(
            quick_answers(&sent.replies),
            0,
            "message 2 for ESP transform {id}"
        );
    }
    assert_eq!(
        s.pair.west.log_count("phase 2 established"),
        1,
        "{}",
        s.pair.logs()
    );
    s.assert_intact(&[
        "no proposal chosen: peer offered [#1 ESP ESP-transform#23 tunnel",
        "ESP transform 23 not supported",
        "ESP transform 250 not supported",
    ]);
}

/// Quick Mode from an authenticated peer naming its clients by FQDN, which no tunnel's
/// selectors can be: no message 2, no SA, a line.
#[test]
fn quick_mode_with_fqdn_ids_makes_no_sa() {
    e2e::require_env!();
    let mut s = scene("hfqdn");
    let x = s.authenticated(*b"fqdnids!");
    let fqdn = |name: &[u8]| {
        Payload::Id(IdPayload {
            protocol: 0,
            port: 0,
            identity: Identity::Fqdn(name.to_vec()),
        })
    };
    let (sent, _) = quick_mode_1(
        &mut s,
        &x,
        0x0f9d_0001,
        esp_offer(12, west_suite_attributes()),
        [fqdn(b"east.example"), fqdn(b"west.example")],
    );
    assert_eq!(quick_answers(&sent.replies), 0, "message 2 for FQDN IDs");
    assert_eq!(
        s.pair.west.log_count("phase 2 established"),
        1,
        "{}",
        s.pair.logs()
    );
    s.assert_intact(&[
        "Quick Mode from peer-east: no connection matches east.example <=> west.example",
    ]);
}

/// A Quick Mode the authenticated peer completes, then its message 1 and message 3 sent
/// again: nothing new is negotiated or installed, and what west holds does not change.
#[test]
fn a_replayed_quick_mode_message_negotiates_nothing() {
    e2e::require_env!();
    let mut s = scene("hqmr");
    let x = s.authenticated(*b"replayqm");
    let msgid = 0x0e9e_a7ed;
    let (sent, ni) = quick_mode_1(
        &mut s,
        &x,
        msgid,
        esp_offer(12, west_suite_attributes()),
        [subnet_id(EAST_NET), subnet_id(WEST_NET)],
    );
    let (qm2, qm2_last) = x
        .read_qm2(&sent)
        .unwrap_or_else(|e| panic!("{e}\n{}", s.pair.logs()));
    let nr = qm2
        .iter()
        .find_map(|p| match p {
            Payload::Nonce(n) => Some(n.clone()),
            _ => None,
        })
        .expect("QM2 nonce");
    let (qm3, _) = x.qm3(&mut s.wire, msgid, &ni, &nr, &qm2_last).expect("QM3");
    assert!(
        e2e::wait_until(Duration::from_secs(5), || s
            .pair
            .west
            .log_count("phase 2 established")
            >= 2),
        "the scripted Quick Mode did not complete\n{}",
        s.pair.logs()
    );
    let after_qm = held(&s.pair.west);
    for (what, bytes) in [
        ("message 1", &sent.bytes),
        ("message 3", &qm3),
        ("message 1", &sent.bytes),
    ] {
        let got = s.raw(bytes);
        assert!(
            got.iter().all(|r| r == &sent.replies[0].bytes),
            "{what} replayed got a new answer"
        );
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        s.pair.west.log_count("phase 2 established"),
        2,
        "{}",
        s.pair.logs()
    );
    assert_eq!(held(&s.pair.west), after_qm, "{}", s.pair.logs());
    s.assert_intact(&[]);
}
