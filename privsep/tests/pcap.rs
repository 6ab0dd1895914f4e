//! The packet log writer: byte layout of the pcap file and of the synthesised IP/UDP
//! headers, checked by hand, and the whole capture read back by tshark when it is installed.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ike::codec::{
    flags, oakley_attr, transform_id, Attribute, Cookie, ExchangeType, Header, IdPayload, Identity,
    Message, Payload, PayloadType, Proposal, ProtocolId, SaPayload, Transform, DOI_IPSEC,
    HEADER_LEN, SIT_IDENTITY_ONLY,
};
use privsep::pcap::{
    decrypted_view, PcapWriter, GLOBAL_HEADER_LEN, LINKTYPE_RAW, NATT_PORT, RECORD_HEADER_LEN,
    SNAPLEN,
};

// ---------------------------------------------------------------------------------------
// Helpers: an independent reading of the file.

fn u16be(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}
fn u32le(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn u32be(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// One's-complement sum of 16-bit words, folded (RFC 1071). Summing a region that includes
/// a correct checksum gives 0xffff.
fn ones_sum(parts: &[&[u8]]) -> u16 {
    let mut acc: u32 = 0;
    for part in parts {
        for pair in part.chunks(2) {
            let hi = u32::from(pair[0]) << 8;
            let lo = pair.get(1).map_or(0, |b| u32::from(*b));
            acc += hi | lo;
            acc = (acc & 0xffff) + (acc >> 16);
        }
    }
    acc as u16
}

struct Record {
    secs: u32,
    micros: u32,
    caplen: u32,
    len: u32,
    data: Vec<u8>,
}

/// Splits a capture into its global header and records, asserting the framing is sound.
fn records(file: &[u8]) -> Vec<Record> {
    assert!(file.len() >= GLOBAL_HEADER_LEN);
    let mut at = GLOBAL_HEADER_LEN;
    let mut out = Vec::new();
    while at < file.len() {
        assert!(at + RECORD_HEADER_LEN <= file.len(), "cut record header");
        let caplen = u32le(file, at + 8);
        let len = u32le(file, at + 12);
        let start = at + RECORD_HEADER_LEN;
        let end = start + caplen as usize;
        assert!(end <= file.len(), "cut record data");
        out.push(Record {
            secs: u32le(file, at),
            micros: u32le(file, at + 4),
            caplen,
            len,
            data: file[start..end].to_vec(),
        });
        at = end;
    }
    out
}

fn v4(a: [u8; 4], port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::from(a), port))
}
fn v6(a: &str, port: u16) -> SocketAddr {
    SocketAddr::from((a.parse::<Ipv6Addr>().unwrap(), port))
}
fn at(secs: u64, nanos: u32) -> SystemTime {
    UNIX_EPOCH + Duration::new(secs, nanos)
}

fn capture(build: impl FnOnce(&mut PcapWriter<Vec<u8>>)) -> Vec<u8> {
    let mut w = PcapWriter::new(Vec::new()).unwrap();
    build(&mut w);
    w.into_inner()
}

/// Checks the IPv4 header and UDP header of `pkt` (a full, uncut packet) and returns the
/// UDP payload.
fn check_ipv4(pkt: &[u8], src: SocketAddr, dst: SocketAddr) -> &[u8] {
    let (SocketAddr::V4(s), SocketAddr::V4(d)) = (src, dst) else {
        panic!("not v4")
    };
    assert_eq!(pkt[0], 0x45, "version 4, IHL 5");
    assert_eq!(u16be(pkt, 2) as usize, pkt.len(), "IPv4 total length");
    assert_eq!(u16be(pkt, 6), 0, "no flags, no fragment offset");
    assert_eq!(pkt[8], 64, "TTL");
    assert_eq!(pkt[9], 17, "protocol UDP");
    assert_ne!(u16be(pkt, 10), 0, "header checksum is filled in");
    assert_eq!(
        ones_sum(&[&pkt[..20]]),
        0xffff,
        "IPv4 header checksum verifies"
    );
    assert_eq!(pkt[12..16], s.ip().octets());
    assert_eq!(pkt[16..20], d.ip().octets());
    let udp = &pkt[20..];
    assert_eq!(u16be(udp, 0), s.port());
    assert_eq!(u16be(udp, 2), d.port());
    assert_eq!(u16be(udp, 4) as usize, udp.len(), "UDP length");
    assert_ne!(u16be(udp, 6), 0, "UDP checksum present");
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&pkt[12..20]);
    pseudo.extend_from_slice(&[0, 17]);
    pseudo.extend_from_slice(&(udp.len() as u16).to_be_bytes());
    assert_eq!(ones_sum(&[&pseudo, udp]), 0xffff, "UDP checksum verifies");
    &udp[8..]
}

fn check_ipv6(pkt: &[u8], src: SocketAddr, dst: SocketAddr) -> &[u8] {
    let (SocketAddr::V6(s), SocketAddr::V6(d)) = (src, dst) else {
        panic!("not v6")
    };
    assert_eq!(pkt[..4], [0x60, 0, 0, 0], "version 6, class 0, flow 0");
    assert_eq!(
        u16be(pkt, 4) as usize,
        pkt.len() - 40,
        "IPv6 payload length"
    );
    assert_eq!(pkt[6], 17, "next header UDP");
    assert_eq!(pkt[7], 64, "hop limit");
    assert_eq!(pkt[8..24], s.ip().octets());
    assert_eq!(pkt[24..40], d.ip().octets());
    let udp = &pkt[40..];
    assert_eq!(u16be(udp, 0), s.port());
    assert_eq!(u16be(udp, 2), d.port());
    assert_eq!(u16be(udp, 4) as usize, udp.len(), "UDP length");
    assert_ne!(u16be(udp, 6), 0, "UDP checksum is mandatory over IPv6");
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&pkt[8..40]);
    pseudo.extend_from_slice(&(udp.len() as u32).to_be_bytes());
    pseudo.extend_from_slice(&[0, 0, 0, 17]);
    assert_eq!(ones_sum(&[&pseudo, udp]), 0xffff, "UDP checksum verifies");
    &udp[8..]
}

// ---------------------------------------------------------------------------------------
// IKE messages built with the ike codec.

const ICOOKIE: [u8; 8] = [0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88];
const RCOOKIE: [u8; 8] = [0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8];

fn header(i: [u8; 8], r: [u8; 8], exchange: ExchangeType, flags: u8, msgid: u32) -> Header {
    Header {
        initiator_cookie: Cookie(i),
        responder_cookie: Cookie(r),
        next_payload: PayloadType::NONE,
        version: 0x10,
        exchange,
        flags,
        message_id: msgid,
        length: 0,
    }
}

fn phase1_sa() -> Payload {
    Payload::Sa(SaPayload {
        doi: DOI_IPSEC,
        situation: SIT_IDENTITY_ONLY,
        proposals: vec![Proposal {
            number: 1,
            protocol: ProtocolId::ISAKMP,
            spi: vec![],
            transforms: vec![Transform {
                number: 1,
                transform_id: transform_id::KEY_IKE,
                attributes: vec![
                    Attribute::basic(oakley_attr::ENCRYPTION_ALGORITHM, oakley_attr::ENC_AES_CBC),
                    Attribute::basic(oakley_attr::KEY_LENGTH, 128),
                    Attribute::basic(oakley_attr::HASH_ALGORITHM, oakley_attr::HASH_SHA2_256),
                    Attribute::basic(
                        oakley_attr::AUTHENTICATION_METHOD,
                        oakley_attr::AUTH_PRE_SHARED,
                    ),
                    Attribute::basic(oakley_attr::GROUP_DESCRIPTION, 14),
                    Attribute::basic(oakley_attr::LIFE_TYPE, oakley_attr::LIFE_SECONDS),
                    Attribute::number(oakley_attr::LIFE_DURATION, 3600),
                ],
            }],
        }],
    })
}

/// Main Mode message 1: SA and a Vendor ID.
fn main_mode_1() -> Vec<u8> {
    Message {
        header: header(ICOOKIE, [0; 8], ExchangeType::MAIN_MODE, 0, 0),
        payloads: vec![
            phase1_sa(),
            // RFC 3947 NAT-T vendor ID (MD5 of "RFC 3947").
            Payload::VendorId(vec![
                0x4a, 0x13, 0x1c, 0x81, 0x07, 0x03, 0x58, 0x45, 0x5c, 0x57, 0x28, 0xf2, 0x0e, 0x95,
                0x45, 0x2f,
            ]),
        ],
    }
    .emit()
    .unwrap()
}

/// Main Mode message 3: KE and Nonce.
fn main_mode_3() -> Vec<u8> {
    Message {
        header: header(ICOOKIE, RCOOKIE, ExchangeType::MAIN_MODE, 0, 0),
        payloads: vec![Payload::Ke(vec![0x5a; 256]), Payload::Nonce(vec![0xc3; 32])],
    }
    .emit()
    .unwrap()
}

/// Main Mode message 5 as it is sent: header with the encryption flag, ciphertext body.
/// Returns (the encrypted datagram, the plaintext payload chain).
fn main_mode_5_encrypted() -> (Vec<u8>, Vec<u8>) {
    let plain = ike::codec::emit_payloads(&[
        Payload::Id(IdPayload {
            protocol: 17,
            port: 500,
            identity: Identity::Ipv4(Ipv4Addr::new(192, 0, 2, 1)),
        }),
        Payload::Hash(vec![0x77; 32]),
    ])
    .unwrap();
    assert_eq!(plain.0, PayloadType::ID);
    let cipher = vec![0xee; 64];
    let msg = Message::emit_with_body(
        &header(
            ICOOKIE,
            RCOOKIE,
            ExchangeType::MAIN_MODE,
            flags::ENCRYPTION,
            0,
        ),
        PayloadType::ID,
        &cipher,
    )
    .unwrap();
    (msg, plain.1)
}

// ---------------------------------------------------------------------------------------
// Byte-level tests.

#[test]
fn global_header_fields() {
    let file = capture(|_| {});
    assert_eq!(file.len(), GLOBAL_HEADER_LEN);
    assert_eq!(file[..4], [0xd4, 0xc3, 0xb2, 0xa1], "magic, little-endian");
    assert_eq!(u16::from_le_bytes([file[4], file[5]]), 2, "major version");
    assert_eq!(u16::from_le_bytes([file[6], file[7]]), 4, "minor version");
    assert_eq!(u32le(&file, 8), 0, "thiszone");
    assert_eq!(u32le(&file, 12), 0, "sigfigs");
    assert_eq!(u32le(&file, 16), 65535, "snaplen");
    assert_eq!(u32le(&file, 20), 101, "LINKTYPE_RAW");
    assert_eq!((SNAPLEN, LINKTYPE_RAW), (65535, 101));
}

#[test]
fn zero_snaplen_is_refused() {
    let err = PcapWriter::with_snaplen(Vec::new(), 0).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
}

#[test]
fn ipv4_record() {
    let ike = main_mode_1();
    let src = v4([192, 0, 2, 1], 500);
    let dst = v4([198, 51, 100, 7], 500);
    let file = capture(|w| {
        w.record(at(1_700_000_000, 123_456_789), src, dst, &ike)
            .unwrap()
    });
    let recs = records(&file);
    assert_eq!(recs.len(), 1);
    let r = &recs[0];
    assert_eq!((r.secs, r.micros), (1_700_000_000, 123_456));
    assert_eq!(r.len as usize, 20 + 8 + ike.len());
    assert_eq!(r.caplen, r.len);
    let payload = check_ipv4(&r.data, src, dst);
    assert_eq!(
        payload,
        &ike[..],
        "IKE bytes unchanged, no marker on port 500"
    );
}

#[test]
fn ipv4_odd_length_and_ids_increase() {
    // An odd-length datagram exercises the padding byte of the checksums.
    let src = v4([10, 1, 2, 3], 500);
    let dst = v4([10, 255, 254, 253], 1500);
    let file = capture(|w| {
        w.record(at(5, 0), src, dst, &[0xff; 29]).unwrap();
        w.record(at(6, 0), dst, src, &[0x01; 101]).unwrap();
    });
    let recs = records(&file);
    assert_eq!(recs.len(), 2);
    assert_eq!(check_ipv4(&recs[0].data, src, dst), &[0xff; 29][..]);
    assert_eq!(check_ipv4(&recs[1].data, dst, src), &[0x01; 101][..]);
    let id0 = u16be(&recs[0].data, 4);
    let id1 = u16be(&recs[1].data, 4);
    assert_eq!(id1, id0.wrapping_add(1), "IPv4 identification counts up");
}

#[test]
fn ipv6_record() {
    let ike = main_mode_3();
    let src = v6("2001:db8::1", 500);
    let dst = v6("2001:db8:ffff::fffe", 500);
    let file = capture(|w| w.record(at(1, 999_999_999), src, dst, &ike).unwrap());
    let recs = records(&file);
    assert_eq!(recs.len(), 1);
    let r = &recs[0];
    assert_eq!((r.secs, r.micros), (1, 999_999));
    assert_eq!(r.len as usize, 40 + 8 + ike.len());
    assert_eq!(r.caplen, r.len);
    assert_eq!(check_ipv6(&r.data, src, dst), &ike[..]);
    // Odd length too.
    let file = capture(|w| w.record(at(1, 0), dst, src, &[0xab; 33]).unwrap());
    assert_eq!(
        check_ipv6(&records(&file)[0].data, dst, src),
        &[0xab; 33][..]
    );
}

#[test]
fn natt_marker_is_written_back_for_port_4500() {
    assert_eq!(NATT_PORT, 4500);
    let ike = main_mode_3();
    let a = v4([192, 0, 2, 1], 4500);
    let b = v4([203, 0, 113, 9], 61001); // a NAT-mapped source port
    let a6 = v6("2001:db8::1", 4500);
    let b6 = v6("2001:db8::2", 4500);
    let file = capture(|w| {
        w.record(at(1, 0), a, b, &ike).unwrap(); // from 4500
        w.record(at(2, 0), b, a, &ike).unwrap(); // to 4500
        w.record(at(3, 0), a6, b6, &ike).unwrap();
        w.record(at(4, 0), v4([1, 1, 1, 1], 500), v4([2, 2, 2, 2], 500), &ike)
            .unwrap();
    });
    let recs = records(&file);
    assert_eq!(recs.len(), 4);
    let mut marked = vec![0, 0, 0, 0];
    marked.extend_from_slice(&ike);
    assert_eq!(check_ipv4(&recs[0].data, a, b), &marked[..]);
    assert_eq!(check_ipv4(&recs[1].data, b, a), &marked[..]);
    assert_eq!(check_ipv6(&recs[2].data, a6, b6), &marked[..]);
    assert_eq!(recs[0].len as usize, 20 + 8 + 4 + ike.len());
    assert_eq!(
        check_ipv4(&recs[3].data, v4([1, 1, 1, 1], 500), v4([2, 2, 2, 2], 500)),
        &ike[..],
        "no marker on 500"
    );
}

#[test]
fn natt_port_can_be_changed() {
    let mut w = PcapWriter::new(Vec::new()).unwrap();
    w.set_natt_port(14500);
    let a = v4([192, 0, 2, 1], 14500);
    let b = v4([192, 0, 2, 2], 4500);
    w.record(at(1, 0), a, b, &[1, 2, 3, 4]).unwrap();
    w.record(at(1, 0), b, b, &[1, 2, 3, 4]).unwrap();
    let recs = records(w.get_ref());
    assert_eq!(
        check_ipv4(&recs[0].data, a, b),
        &[0, 0, 0, 0, 1, 2, 3, 4][..]
    );
    assert_eq!(check_ipv4(&recs[1].data, b, b), &[1, 2, 3, 4][..]);
}

#[test]
fn records_longer_than_snaplen_are_cut() {
    // A small snapshot length: caplen is cut, len and the headers keep the true size.
    let ike = main_mode_3();
    let src = v4([192, 0, 2, 1], 500);
    let dst = v4([192, 0, 2, 2], 500);
    let mut w = PcapWriter::with_snaplen(Vec::new(), 100).unwrap();
    assert_eq!(w.snaplen(), 100);
    w.record(at(1, 0), src, dst, &ike).unwrap();
    w.record(at(2, 0), src, dst, &[7; 72]).unwrap(); // exactly 100 bytes: not cut
    let file = w.into_inner();
    assert_eq!(u32le(&file, 16), 100, "snaplen in the global header");
    let recs = records(&file);
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[0].caplen, 100);
    assert_eq!(recs[0].len as usize, 28 + ike.len());
    assert_eq!(
        u16be(&recs[0].data, 2) as usize,
        28 + ike.len(),
        "IP length uncut"
    );
    assert_eq!(ones_sum(&[&recs[0].data[..20]]), 0xffff);
    assert_eq!(recs[0].data[28..], ike[..72]);
    assert_eq!((recs[1].caplen, recs[1].len), (100, 100));

    // The default snapshot length cuts only the largest IPv6 datagrams: 40 + 65535 bytes.
    let big = vec![0x42; 65535 - 8];
    let src6 = v6("2001:db8::1", 500);
    let dst6 = v6("2001:db8::2", 500);
    let file = capture(|w| w.record(at(1, 0), src6, dst6, &big).unwrap());
    let r = &records(&file)[0];
    assert_eq!((r.caplen, r.len), (65535, 40 + 65535));
    assert_eq!(u16be(&r.data, 4), 65535, "IPv6 payload length");
    assert_eq!(u16be(&r.data, 44), 65535, "UDP length");
    // The largest IPv4 datagram fits whole.
    let big4 = vec![0x42; 65535 - 28];
    let file = capture(|w| w.record(at(1, 0), src, dst, &big4).unwrap());
    let r = &records(&file)[0];
    assert_eq!((r.caplen, r.len), (65535, 65535));
    assert_eq!(check_ipv4(&r.data, src, dst), &big4[..]);
}

#[test]
fn oversized_datagrams_are_refused_and_nothing_is_written() {
    let src = v4([192, 0, 2, 1], 500);
    let dst = v4([192, 0, 2, 2], 500);
    let src6 = v6("2001:db8::1", 4500);
    let dst6 = v6("2001:db8::2", 4500);
    let mut w = PcapWriter::new(Vec::new()).unwrap();
    let e = w
        .record(at(1, 0), src, dst, &vec![0; 65535 - 27])
        .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    // 65535 - 8 - 4 fits with the marker, one more does not.
    w.record(at(1, 0), src6, dst6, &vec![0; 65535 - 12])
        .unwrap();
    let before = w.get_ref().len();
    let e = w
        .record(at(1, 0), src6, dst6, &vec![0; 65535 - 11])
        .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    assert_eq!(w.get_ref().len(), before);
    assert_eq!(records(w.get_ref()).len(), 1);
}

#[test]
fn mixed_families_are_invalid_input() {
    let mut w = PcapWriter::new(Vec::new()).unwrap();
    let a = v4([192, 0, 2, 1], 500);
    let b = v6("2001:db8::2", 500);
    let mapped = v6("::ffff:192.0.2.2", 500);
    for (s, d) in [(a, b), (b, a), (a, mapped)] {
        let e = w.record(SystemTime::now(), s, d, &[0; 28]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{s} -> {d}");
    }
    assert_eq!(w.into_inner().len(), GLOBAL_HEADER_LEN, "nothing written");
}

#[test]
fn timestamps_out_of_range() {
    let src = v4([192, 0, 2, 1], 500);
    let file = capture(|w| {
        w.record(UNIX_EPOCH - Duration::from_secs(10), src, src, &[])
            .unwrap();
        w.record(at(u64::from(u32::MAX) + 10, 5_000), src, src, &[])
            .unwrap();
    });
    let recs = records(&file);
    assert_eq!((recs[0].secs, recs[0].micros), (0, 0));
    assert_eq!((recs[1].secs, recs[1].micros), (u32::MAX, 5));
    assert_eq!(check_ipv4(&recs[0].data, src, src), &[] as &[u8]);
}

#[test]
fn write_errors_are_returned() {
    /// Takes `room` bytes, then reports a full disk.
    #[derive(Debug)]
    struct Limited {
        room: usize,
    }
    impl io::Write for Limited {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            if self.room == 0 {
                return Err(io::Error::new(io::ErrorKind::StorageFull, "full"));
            }
            let n = b.len().min(self.room);
            self.room -= n;
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let e = PcapWriter::new(Limited { room: 10 }).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::StorageFull);
    let mut w = PcapWriter::new(Limited { room: 30 }).unwrap();
    let a = v4([192, 0, 2, 1], 500);
    let e = w.record(at(1, 0), a, a, &[0; 28]).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::StorageFull);
}

#[test]
fn decrypted_view_clears_the_flag_and_sets_the_length() {
    let (encrypted, plain) = main_mode_5_encrypted();
    let hdr: [u8; HEADER_LEN] = encrypted[..HEADER_LEN].try_into().unwrap();
    assert_eq!(hdr[19] & flags::ENCRYPTION, flags::ENCRYPTION);
    let view = decrypted_view(&hdr, &plain);
    assert_eq!(view.len(), HEADER_LEN + plain.len());
    assert_eq!(
        view[..19],
        hdr[..19],
        "cookies, next payload, version, exchange kept"
    );
    assert_eq!(view[19], 0, "encryption flag cleared");
    assert_eq!(view[20..24], hdr[20..24], "message ID kept");
    assert_eq!(u32be(&view, 24) as usize, HEADER_LEN + plain.len());
    assert_eq!(view[HEADER_LEN..], plain[..]);
    // The result is an ordinary cleartext message.
    let msg = Message::parse(&view).unwrap();
    assert_eq!(msg.header.initiator_cookie, Cookie(ICOOKIE));
    assert!(matches!(
        msg.payloads[..],
        [Payload::Id(_), Payload::Hash(_)]
    ));

    // Other flags survive; only bit 0x01 is cleared.
    let mut h2 = hdr;
    h2[19] = flags::ENCRYPTION | flags::COMMIT | flags::AUTH_ONLY;
    assert_eq!(
        decrypted_view(&h2, &[])[19],
        flags::COMMIT | flags::AUTH_ONLY
    );
    assert_eq!(u32be(&decrypted_view(&h2, &[]), 24), 28);
}

// ---------------------------------------------------------------------------------------
// tshark.

fn tshark() -> Option<PathBuf> {
    let found = Command::new("sh")
        .args(["-c", "command -v tshark"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map(|path| path.trim().to_owned())
        .filter(|path| !path.is_empty());
    if found.is_none() {
        println!("SKIPPED tshark test: tshark not installed (apt-get install tshark)");
    }
    found.map(PathBuf::from)
}

fn tshark_run(tshark: &PathBuf, file: &PathBuf, args: &[&str]) -> String {
    let out = Command::new(tshark)
        .arg("-n")
        .args([
            "-o",
            "ip.check_checksum:TRUE",
            "-o",
            "udp.check_checksum:TRUE",
        ])
        .arg("-r")
        .arg(file)
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "tshark failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn write_file(name: &str, bytes: &[u8]) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn tshark_decodes_the_capture_as_isakmp() {
    let Some(tshark) = tshark() else { return };
    let m1 = main_mode_1();
    let m3 = main_mode_3();
    let i4 = v4([192, 0, 2, 1], 500);
    let r4 = v4([198, 51, 100, 7], 500);
    let i6 = v6("2001:db8::1", 500);
    let r6 = v6("2001:db8::2", 500);
    let i_natt = v4([203, 0, 113, 9], 61001);
    let r_natt = v4([198, 51, 100, 7], 4500);
    // A responder's Aggressive Mode reply over NAT-T, with other cookies.
    let aggr = Message {
        header: header(
            [1, 2, 3, 4, 5, 6, 7, 8],
            [9; 8],
            ExchangeType::AGGRESSIVE,
            0,
            0,
        ),
        payloads: vec![
            phase1_sa(),
            Payload::Ke(vec![0x10; 128]),
            Payload::Nonce(vec![0x20; 16]),
            Payload::VendorId(vec![0xaf, 0xca, 0xd7, 0x13]),
        ],
    }
    .emit()
    .unwrap();
    let file = capture(|w| {
        w.record(at(1_700_000_000, 0), i4, r4, &m1).unwrap();
        w.record(at(1_700_000_001, 0), i4, r4, &m3).unwrap();
        w.record(at(1_700_000_002, 0), i6, r6, &m1).unwrap();
        w.record(at(1_700_000_003, 0), r_natt, i_natt, &aggr)
            .unwrap();
    });
    let path = write_file("pcap-isakmp.pcap", &file);

    let fields = tshark_run(
        &tshark,
        &path,
        &[
            "-T",
            "fields",
            "-E",
            "separator=|",
            "-e",
            "frame.protocols",
            "-e",
            "isakmp.ispi",
            "-e",
            "isakmp.rspi",
            "-e",
            "isakmp.exchangetype",
            "-e",
            "isakmp.nextpayload",
            "-e",
            "ip.checksum.status",
            "-e",
            "udp.checksum.status",
        ],
    );
    println!("tshark -T fields:\n{fields}");
    let lines: Vec<Vec<&str>> = fields.lines().map(|l| l.split('|').collect()).collect();
    assert_eq!(lines.len(), 4, "{fields}");
    let expect = [
        (
            "raw:ip:udp:isakmp",
            "1122334455667788",
            "0000000000000000",
            "2",
            "1",
        ),
        (
            "raw:ip:udp:isakmp",
            "1122334455667788",
            "a1a2a3a4a5a6a7a8",
            "2",
            "4",
        ),
        (
            "raw:ipv6:udp:isakmp",
            "1122334455667788",
            "0000000000000000",
            "2",
            "1",
        ),
        (
            "raw:ip:udp:udpencap:isakmp",
            "0102030405060708",
            "0909090909090909",
            "4",
            "1",
        ),
    ];
    for (line, (protos, ispi, rspi, exch, next)) in lines.iter().zip(expect) {
        assert_eq!(line[0], protos, "{line:?}");
        assert_eq!(line[1], ispi, "{line:?}");
        assert_eq!(line[2], rspi, "{line:?}");
        assert_eq!(line[3], exch, "{line:?}");
        // The header's next payload comes first; payloads' own next-payload fields follow.
        assert_eq!(line[4].split(',').next(), Some(next), "{line:?}");
        // 1 = Good (0 Bad, 2 Unverified).
        assert!(
            line[5].is_empty() || line[5] == "1",
            "IPv4 checksum {line:?}"
        );
        assert_eq!(line[6], "1", "UDP checksum {line:?}");
    }
    assert!(lines[0][5] == "1" && lines[2][5].is_empty());

    let verbose = tshark_run(&tshark, &path, &["-V"]);
    for needle in [
        "Internet Security Association and Key Management Protocol",
        "Exchange type: Identity Protection (Main Mode) (2)",
        "Exchange type: Aggressive (4)",
        "Payload: Security Association (1)",
        "Payload: Proposal (2)",
        "Payload: Transform (3)",
        "Payload: Key Exchange (4)",
        "Payload: Nonce (10)",
        "Payload: Vendor ID (13)",
        "RFC 3947 Negotiation of NAT-Traversal in the IKE",
        "Non-ESP Marker",
        "Source Port: 4500",
    ] {
        assert!(
            verbose.contains(needle),
            "missing {needle:?} in:\n{verbose}"
        );
    }
    for bad in ["Malformed", "[Bad", "Bogus", "Expert Info (Error"] {
        assert!(!verbose.contains(bad), "{bad:?} in:\n{verbose}");
    }
}

#[test]
fn tshark_reads_a_decrypted_view() {
    let Some(tshark) = tshark() else { return };
    let (encrypted, plain) = main_mode_5_encrypted();
    let hdr: [u8; HEADER_LEN] = encrypted[..HEADER_LEN].try_into().unwrap();
    let i = v4([192, 0, 2, 1], 500);
    let r = v4([198, 51, 100, 7], 500);

    // The encrypted message as sent: tshark sees the flag and cannot read the payloads.
    let file = capture(|w| w.record(at(1, 0), i, r, &encrypted).unwrap());
    let path = write_file("pcap-encrypted.pcap", &file);
    let verbose = tshark_run(&tshark, &path, &["-V"]);
    assert!(verbose.contains("1 = Encryption: Encrypted"), "{verbose}");
    assert!(
        !verbose.contains("Payload: Identification (5)"),
        "{verbose}"
    );

    // The same message as the packet log holds it.
    let file = capture(|w| {
        w.record(at(1, 0), i, r, &decrypted_view(&hdr, &plain))
            .unwrap()
    });
    let path = write_file("pcap-decrypted.pcap", &file);
    let fields = tshark_run(
        &tshark,
        &path,
        &[
            "-T",
            "fields",
            "-E",
            "separator=|",
            "-e",
            "isakmp.ispi",
            "-e",
            "isakmp.flag_e",
            "-e",
            "isakmp.length",
            "-e",
            "isakmp.typepayload",
        ],
    );
    println!("tshark -T fields (decrypted view):\n{fields}");
    let line: Vec<&str> = fields.trim_end().split('|').collect();
    assert_eq!(line[0], "1122334455667788");
    assert!(line[1] == "0" || line[1] == "False", "flag_e {line:?}");
    assert_eq!(line[2], (HEADER_LEN + plain.len()).to_string());
    assert_eq!(line[3], "5,8", "ID then HASH");
    let verbose = tshark_run(&tshark, &path, &["-V"]);
    println!("tshark -V (decrypted view, ISAKMP part):");
    let isakmp = verbose
        .split("Internet Security Association and Key Management Protocol")
        .nth(1)
        .unwrap_or_default();
    println!("{isakmp}");
    for needle in [
        "0 = Encryption: Not encrypted",
        "Payload: Identification (5)",
        "ID_IPV4_ADDR",
        "192.0.2.1",
        "Payload: Hash (8)",
    ] {
        assert!(isakmp.contains(needle), "missing {needle:?} in:\n{isakmp}");
    }
    assert!(!verbose.contains("Malformed"), "{verbose}");
}
