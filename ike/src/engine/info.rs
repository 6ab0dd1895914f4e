//! Informational exchanges (RFC 2408 4.8, RFC 2409 5.7): authenticated Delete and Notify,
//! INITIAL-CONTACT, Dead Peer Detection (RFC 3706) and NAT-T keepalives.

use super::protect::{after_first, chain, open, parse_all, sealed};
use super::timers::Timer;
use super::{Engine, Event, LogLevel};
use crate::codec::{
    flags, DeletePayload, ExchangeType, Header, NotifyPayload, NotifyType, Payload, ProtocolId,
    DOI_IPSEC, HEADER_LEN,
};
use crate::crypto::{info_hash, phase2_iv};
use crate::engine::IsakmpSerial;
use crate::policy::{DpdAction, IpsecProtocol};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// How many times the same R-U-THERE sequence number is answered again.
const DPD_REPEATS: u8 = 3;

impl Engine {
    /// Send an authenticated Informational message under ISAKMP SA `serial`.
    pub(super) fn info_send(&mut self, serial: IsakmpSerial, payloads: Vec<Payload>) {
        let Some(keys) = self.p1_keys(serial) else {
            return;
        };
        let mut msgid = 0;
        while msgid == 0 {
            msgid = self.ctx.rng.next_u32();
        }
        let Ok((_, rest)) = chain(&payloads) else {
            return;
        };
        let h = info_hash(keys.prf, &keys.skeyid_a, msgid, &rest);
        let mut all = vec![Payload::Hash(h)];
        all.extend(payloads);
        let Some(p1) = self.phase1.get(&serial) else {
            return;
        };
        let header = p1.header(ExchangeType::INFORMATIONAL, msgid, flags::ENCRYPTION);
        let iv = phase2_iv(keys.prf, keys.encr.block_len(), &keys.iv, msgid);
        let (from, to) = (p1.local, p1.remote);
        match sealed(header, &all, keys.encr, &keys.enc_key, &iv) {
            Ok((bytes, _, view)) => {
                self.ctx.capture(from, to, view);
                self.ctx.transmit(from, to, bytes)
            }
            Err(e) => self.ctx.log(
                LogLevel::Error,
                format!("cannot build Informational message: {e}"),
            ),
        }
    }

    /// A notification under ISAKMP SA `serial` (encrypted once keys exist).
    pub(super) fn info_notify(
        &mut self,
        serial: IsakmpSerial,
        t: NotifyType,
        protocol: ProtocolId,
        spi: Vec<u8>,
    ) {
        let n = Payload::Notify(NotifyPayload {
            doi: DOI_IPSEC,
            protocol,
            spi,
            notify_type: t,
            data: Vec::new(),
        });
        self.info_send(serial, vec![n]);
    }

    /// An Informational message arrived.
    pub(super) fn info_datagram(
        &mut self,
        _local: SocketAddr,
        remote: SocketAddr,
        header: &Header,
        bytes: &[u8],
    ) {
        let key = (header.initiator_cookie, header.responder_cookie);
        let serial = self
            .by_cookies
            .get(&key)
            .or_else(|| {
                self.by_cookies
                    .get(&(header.initiator_cookie, Default::default()))
            })
            .copied();
        if header.flags & flags::ENCRYPTION == 0 {
            // Unauthenticated: anyone can send it, so it is logged and nothing else.
            let what = match parse_all(header.next_payload, &bytes[HEADER_LEN..], false) {
                Ok((_, p)) => informational_names(&p),
                Err(e) => format!("malformed: {e}"),
            };
            let p1 = serial.and_then(|s| self.phase1.get(&s));
            let peer = p1.map(|p| p.peer.clone());
            // Our own phase 1 offer refused: say what we offered (the peer does not say
            // what it would accept), so the log names both sides' part of the mismatch.
            let refused_offer = p1
                .filter(|p| p.role == super::phase1::Role::Initiator && !p.is_established())
                .filter(|_| what.contains("NO-PROPOSAL-CHOSEN"))
                .and_then(|p| self.peer_by_name(&p.peer))
                .map(|cfg| {
                    cfg.transforms
                        .iter()
                        .map(crate::policy::describe_p1)
                        .collect::<Vec<_>>()
                        .join(", ")
                });
            if let (Some(offer), Some(peer)) = (refused_offer, &peer) {
                return self.ctx.log(
                    LogLevel::Warning,
                    format!(
                        "no proposal chosen: peer {peer} ({remote}) refused our phase 1 offer [{offer}] with an unauthenticated NO-PROPOSAL-CHOSEN; it does not say what it accepts (waiting for a valid reply until the exchange times out)"
                    ),
                );
            }
            return self.ctx.log(
                LogLevel::Notice,
                format!(
                    "unauthenticated Informational from {remote}{}: {what} (ignored)",
                    peer.map(|p| format!(" (peer {p})")).unwrap_or_default()
                ),
            );
        }
        let Some(serial) = serial else {
            return self.ctx.debug(format!(
                "dropping Informational from {remote}: no ISAKMP SA"
            ));
        };
        let Some(keys) = self.p1_keys(serial) else {
            return self
                .ctx
                .debug(format!("dropping Informational from {remote}: no keys yet"));
        };
        let msgid = header.message_id;
        if msgid == 0
            || self
                .phase1
                .get(&serial)
                .is_some_and(|p| p.seen_msgids.contains(&msgid))
        {
            return self.ctx.debug(format!(
                "dropping replayed or ID-less Informational from {remote}"
            ));
        }
        let iv = phase2_iv(keys.prf, keys.encr.block_len(), &keys.iv, msgid);
        let Ok((pt, _)) = open(bytes, keys.encr, &keys.enc_key, &iv) else {
            return self.ctx.log(
                LogLevel::Notice,
                format!("cannot decrypt Informational from {remote}"),
            );
        };
        self.ctx
            .capture(remote, _local, super::protect::view(bytes, &pt));
        let Ok((raws, payloads)) = parse_all(header.next_payload, &pt, true) else {
            return self.ctx.log(
                LogLevel::Notice,
                format!("malformed Informational from {remote} (or wrong key)"),
            );
        };
        let want = info_hash(keys.prf, &keys.skeyid_a, msgid, after_first(&pt, &raws));
        if !matches!(payloads.first(), Some(Payload::Hash(h)) if super::protect::ct_eq(h, &want)) {
            return self.ctx.log(
                LogLevel::Warning,
                format!("Informational from {remote} failed its HASH check: dropped"),
            );
        }
        let Some(p1) = self.phase1.get_mut(&serial) else {
            return;
        };
        p1.seen_msgids.insert(msgid);
        p1.last_heard = self.ctx.now;
        let peer = p1.peer.clone();
        if !p1.is_established() {
            // The keys exist after message 4, before the peer has proven who it is: with
            // signatures anyone can get that far. A Delete, INITIAL-CONTACT or R-U-THERE
            // under such an SA reaches other SAs, so it is only logged; an error notify
            // still ends this exchange, which is the sender's own.
            let (touches_others, own): (Vec<Payload>, Vec<Payload>) =
                payloads.into_iter().skip(1).partition(|p| match p {
                    Payload::Notify(n) => !n.notify_type.is_error(),
                    _ => true,
                });
            let what = informational_names(&touches_others);
            if !what.is_empty() {
                self.ctx.log(
                    LogLevel::Notice,
                    format!(
                        "Informational from {remote} under an ISAKMP SA not yet authenticated: {what} (not acted on)"
                    ),
                );
            }
            for p in own {
                if let Payload::Notify(n) = p {
                    self.peer_notify(serial, &peer, n);
                }
            }
            return;
        }
        for p in payloads.into_iter().skip(1) {
            match p {
                Payload::Delete(d) => self.peer_delete(serial, &peer, d),
                Payload::Notify(n) => self.peer_notify(serial, &peer, n),
                _ => {}
            }
        }
    }

    fn peer_delete(&mut self, serial: IsakmpSerial, peer: &str, d: DeletePayload) {
        if d.protocol == ProtocolId::ISAKMP {
            let id = self.phase1.get(&serial).and_then(|p| p.id_peer.clone());
            for spi in &d.spis {
                let target = self
                    .phase1
                    .values()
                    .find(|p| {
                        p.peer == peer
                            && p.id_peer == id
                            && [p.icookie.0, p.rcookie.0].concat() == *spi
                    })
                    .map(|p| p.serial);
                if let Some(t) = target {
                    self.delete_phase1(t, false, "deleted by peer");
                }
            }
            return;
        }
        let protocol = match d.protocol {
            ProtocolId::IPSEC_ESP => IpsecProtocol::Esp,
            ProtocolId::IPSEC_AH => IpsecProtocol::Ah,
            other => {
                return self
                    .ctx
                    .debug(format!("Delete for protocol {} ignored", other.0))
            }
        };
        let id = self.phase1.get(&serial).and_then(|p| p.id_peer.clone());
        for spi in &d.spis {
            let Ok(spi) = <[u8; 4]>::try_from(spi.as_slice()) else {
                continue;
            };
            let spi = u32::from_be_bytes(spi);
            // The peer names its inbound SPI, which is our outbound one.
            let sa = self
                .ipsec
                .values()
                .find(|s| {
                    s.peer == peer
                        && s.peer_id == id
                        && s.spis
                            .iter()
                            .any(|(p, _, out)| *p == protocol && *out == spi)
                })
                .map(|s| s.serial);
            match sa {
                Some(s) => self.remove_ipsec_sa(s, false, "deleted by peer"),
                None => self.ctx.debug(format!(
                    "Delete from {peer} for unknown SPI {spi:08x} ignored"
                )),
            }
        }
    }

    /// RFC 3706 7: an R-U-THERE carries a 32-bit sequence number later than the last one
    /// answered (modulo 2^32, as its first value may be random); an older one, or one of
    /// the wrong length, is not answered, since an answer is a proof of liveness. The same
    /// number again is answered up to [`DPD_REPEATS`] times, as pluto does: OpenBSD's
    /// isakmpd retransmits an unanswered R-U-THERE without a new number. (The SPI is not
    /// checked, as pluto tolerates too: some peers fill it wrongly, and the HASH has
    /// already tied the message to this ISAKMP SA.)
    fn r_u_there_in_order(&mut self, serial: IsakmpSerial, peer: &str, n: &NotifyPayload) -> bool {
        let Some(e) = self
            .phase1
            .get_mut(&serial)
            .and_then(|p| p.established_mut())
        else {
            return false;
        };
        let why = match <[u8; 4]>::try_from(n.data.as_slice()).map(u32::from_be_bytes) {
            Err(_) => format!("{} bytes of sequence number", n.data.len()),
            Ok(seq) => match e.peer_dpd_seq {
                Some(last) if seq == last => {
                    if e.peer_dpd_repeats >= DPD_REPEATS {
                        format!("sequence number {seq} repeated more than {DPD_REPEATS} times")
                    } else {
                        e.peer_dpd_repeats += 1;
                        return true;
                    }
                }
                // Later when the difference, read as signed, is positive.
                Some(last) if (seq.wrapping_sub(last) as i32) < 0 => {
                    format!("sequence number {seq}, before the last answered ({last})")
                }
                _ => {
                    e.peer_dpd_seq = Some(seq);
                    e.peer_dpd_repeats = 0;
                    return true;
                }
            },
        };
        self.ctx.log(
            LogLevel::Notice,
            format!("R-U-THERE from {peer} with {why}: not answered"),
        );
        false
    }

    fn peer_notify(&mut self, serial: IsakmpSerial, peer: &str, n: NotifyPayload) {
        match n.notify_type {
            NotifyType::R_U_THERE => {
                if !self.r_u_there_in_order(serial, peer, &n) {
                    return;
                }
                let ack = Payload::Notify(NotifyPayload {
                    notify_type: NotifyType::R_U_THERE_ACK,
                    ..n
                });
                self.info_send(serial, vec![ack]);
            }
            NotifyType::R_U_THERE_ACK => {
                let seq = <[u8; 4]>::try_from(n.data.as_slice())
                    .map(u32::from_be_bytes)
                    .ok();
                if let Some(e) = self
                    .phase1
                    .get_mut(&serial)
                    .and_then(|p| p.established_mut())
                {
                    if e.dpd_outstanding.is_some_and(|(s, _)| Some(s) == seq) {
                        e.dpd_outstanding = None;
                    }
                }
            }
            NotifyType::INITIAL_CONTACT => self.initial_contact(serial),
            t => {
                self.ctx.log(
                    LogLevel::Notice,
                    format!("peer {peer} notified {}", notify_name(t)),
                );
                // An authenticated error during phase 1 ends the exchange at once.
                let negotiating = self
                    .phase1
                    .get(&serial)
                    .is_some_and(|p| !p.is_established());
                // An Aggressive Mode initiator is done when it sends its last message; the
                // responder's verdict on it can only come afterwards.
                let aggressive_initiator = self.phase1.get(&serial).is_some_and(|p| {
                    p.mode == crate::policy::Phase1Mode::Aggressive
                        && p.role == super::phase1::Role::Initiator
                });
                if t.is_error() && negotiating {
                    self.p1_fail(serial, format!("peer refused: {}", notify_name(t)));
                } else if t == NotifyType::AUTHENTICATION_FAILED && aggressive_initiator {
                    self.delete_phase1(serial, false, "peer refused: AUTHENTICATION-FAILED");
                }
            }
        }
    }

    /// The peer has rebooted (INITIAL-CONTACT): every other SA with that host (the same
    /// address and identity) is stale. Other hosts that share the peer section (road
    /// warriors under `[Phase 1] Default`) are not touched.
    pub(super) fn initial_contact(&mut self, serial: IsakmpSerial) {
        let Some(p1) = self.phase1.get(&serial) else {
            return;
        };
        let (peer, remote, id) = (p1.peer.clone(), p1.remote.ip(), p1.id_peer.clone());
        for (s, _) in self.same_identity_p1s(serial, |at| at == remote) {
            self.delete_phase1(s, false, "peer sent INITIAL-CONTACT");
        }
        let stale: Vec<_> = self
            .ipsec
            .values()
            .filter(|s| s.peer == peer && s.p1 != serial && s.remote == remote && s.peer_id == id)
            .map(|s| s.serial)
            .collect();
        for s in stale {
            self.remove_ipsec_sa(s, false, "peer sent INITIAL-CONTACT");
        }
    }

    /// The other established ISAKMP SAs of ISAKMP SA `serial`'s peer section and peer
    /// identity, with their peer's address, where `at` accepts that address.
    fn same_identity_p1s(
        &self,
        serial: IsakmpSerial,
        at: impl Fn(IpAddr) -> bool,
    ) -> Vec<(IsakmpSerial, IpAddr)> {
        let Some(p1) = self.phase1.get(&serial) else {
            return Vec::new();
        };
        self.phase1
            .values()
            .filter(|p| {
                p.peer == p1.peer
                    && p.serial != serial
                    && p.is_established()
                    && at(p.remote.ip())
                    && p.id_peer == p1.id_peer
            })
            .map(|p| (p.serial, p.remote.ip()))
            .collect()
    }

    /// Unique-ids (pluto's uniqueids): the peer authenticated with the identity of another
    /// established ISAKMP SA of its peer section at another address: a road warrior that
    /// reconnected from a new address. The old ISAKMP SA and its IPsec SAs go (the old
    /// address told, in case the old host still listens). Identities that are addresses
    /// are left out: many clients behind NATs announce the same private address.
    pub(super) fn unique_id(&mut self, serial: IsakmpSerial) {
        let Some(p1) = self.phase1.get(&serial) else {
            return;
        };
        let (peer, remote) = (p1.peer.clone(), p1.remote.ip());
        let Some(id) = p1.id_peer.clone().filter(|i| names_a_party(&i.identity)) else {
            return;
        };
        for (s, at) in self.same_identity_p1s(serial, |at| at != remote) {
            self.ctx.log(
                LogLevel::Notice,
                format!(
                    "peer {peer} {} is now at {remote}: its SAs at {at} are removed (Unique-ids)",
                    crate::x509::describe_identity(&id.identity)
                ),
            );
            let stale: Vec<_> = self
                .ipsec
                .values()
                .filter(|sa| {
                    sa.p1 == s
                        || (sa.peer == peer && sa.remote == at && sa.peer_id.as_ref() == Some(&id))
                })
                .map(|sa| sa.serial)
                .collect();
            for sa in stale {
                self.remove_ipsec_sa(sa, true, "replaced by the same identity at another address");
            }
            self.delete_phase1(s, true, "replaced by the same identity at another address");
        }
    }

    /// DPD (RFC 3706): after `DPD-check-interval` of silence, ask R-U-THERE.
    pub(super) fn dpd_check(&mut self, serial: IsakmpSerial) {
        let now = self.ctx.now;
        let timeout = self.ctx.cfg.timers.dpd_timeout;
        let Some(p1) = self.phase1.get(&serial) else {
            return;
        };
        let Some(outstanding) = p1.established().map(|e| e.dpd_outstanding) else {
            return;
        };
        if p1.replaced {
            return;
        }
        let Some(peer) = self.peer_by_name(&p1.peer) else {
            return;
        };
        let interval = Duration::from_secs(peer.dpd_interval.max(1));
        let timeout = peer.dpd_timeout.map_or(timeout, Duration::from_secs);
        if let Some((_, since)) = outstanding {
            if now.duration_since(since) >= timeout {
                return self.peer_dead(serial);
            }
        }
        let idle = now.duration_since(p1.last_heard);
        if idle >= interval || outstanding.is_some() {
            let Some(p1) = self.phase1.get_mut(&serial) else {
                return;
            };
            let Some(e) = p1.established_mut() else {
                return;
            };
            e.dpd_seq = e.dpd_seq.wrapping_add(1);
            let seq = e.dpd_seq;
            let since = e.dpd_outstanding.map_or(now, |(_, t)| t);
            e.dpd_outstanding = Some((seq, since));
            let spi = [p1.icookie.0, p1.rcookie.0].concat();
            let n = Payload::Notify(NotifyPayload {
                doi: DOI_IPSEC,
                protocol: ProtocolId::ISAKMP,
                spi,
                notify_type: NotifyType::R_U_THERE,
                data: seq.to_be_bytes().to_vec(),
            });
            self.info_send(serial, vec![n]);
            let next = interval.min(timeout / 3).max(Duration::from_millis(100));
            self.ctx.timers.add(now + next, Timer::Dpd { serial });
        } else {
            self.ctx
                .timers
                .add(now + (interval - idle), Timer::Dpd { serial });
        }
    }

    fn peer_dead(&mut self, serial: IsakmpSerial) {
        let Some(p1) = self.phase1.get(&serial) else {
            return;
        };
        let peer = p1.peer.clone();
        let remote = p1.remote.ip();
        let action = self
            .peer_by_name(&peer)
            .map_or(DpdAction::Clear, |p| p.dpd_action);
        self.ctx.log(
            LogLevel::Warning,
            format!("peer {peer} is dead (no answer to DPD): {action:?}"),
        );
        self.ctx.event(Event::PeerDead { peer: peer.clone() });
        // What died is the peer at this address: under a peer section road warriors
        // share, the others are alive and keep their SAs.
        let p1s: Vec<_> = self
            .phase1
            .values()
            .filter(|p| p.peer == peer && p.remote.ip() == remote)
            .map(|p| p.serial)
            .collect();
        let dead: Vec<_> = self
            .ipsec
            .values()
            .filter(|s| p1s.contains(&s.p1) || (s.peer == peer && s.remote == remote))
            .map(|s| (s.serial, s.tunnel()))
            .collect();
        let wanted: Vec<_> = dead.iter().map(|(_, t)| t.connection.clone()).collect();
        for (s, _) in &dead {
            self.remove_ipsec_sa(*s, false, "peer dead");
        }
        for s in p1s {
            self.delete_phase1(s, false, "peer dead");
        }
        match action {
            DpdAction::Restart => {
                let mut conns = wanted;
                conns.sort();
                conns.dedup();
                for c in conns {
                    self.start_connection(&c);
                }
            }
            DpdAction::Clear => {
                // Without SAs the policies would drop the traffic: remove them as well (a
                // trapped connection's trap too).
                for (_, tunnel) in &dead {
                    if self.traps.contains(&tunnel.connection) {
                        self.remove_policies(&tunnel.connection);
                    } else {
                        self.remove_tunnel_policy(tunnel);
                    }
                }
                self.keep_closed();
            }
            // Policies stay, so traffic is held (dropped) until an ACQUIRE brings it back.
            DpdAction::Hold => {}
        }
    }

    /// NAT-T keepalive (RFC 3948 2.3) while we are behind a NAT.
    pub(super) fn nat_keepalive(&mut self, serial: IsakmpSerial) {
        let Some(p1) = self.phase1.get(&serial) else {
            return;
        };
        let (from, to) = (p1.local, p1.remote);
        self.ctx
            .out
            .push_back(super::Output::Transmit(super::Transmit {
                from,
                to,
                bytes: vec![0xff],
            }));
        self.ctx.timers.add(
            self.ctx.now + self.ctx.cfg.timers.nat_keepalive,
            Timer::Keepalive { serial },
        );
    }
}

/// A notification's name as RFC 2408 writes it.
/// The Notify and Delete payloads of an Informational, named for the log.
fn informational_names(payloads: &[Payload]) -> String {
    payloads
        .iter()
        .filter_map(|x| match x {
            Payload::Notify(n) => Some(notify_name(n.notify_type)),
            Payload::Delete(_) => Some("DELETE".to_string()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn notify_name(t: NotifyType) -> String {
    let name = match t {
        NotifyType::INVALID_PAYLOAD_TYPE => "INVALID-PAYLOAD-TYPE",
        NotifyType::INVALID_COOKIE => "INVALID-COOKIE",
        NotifyType::INVALID_EXCHANGE_TYPE => "INVALID-EXCHANGE-TYPE",
        NotifyType::INVALID_SPI => "INVALID-SPI",
        NotifyType::NO_PROPOSAL_CHOSEN => "NO-PROPOSAL-CHOSEN",
        NotifyType::PAYLOAD_MALFORMED => "PAYLOAD-MALFORMED",
        NotifyType::INVALID_KEY_INFORMATION => "INVALID-KEY-INFORMATION",
        NotifyType::INVALID_ID_INFORMATION => "INVALID-ID-INFORMATION",
        NotifyType::INVALID_HASH_INFORMATION => "INVALID-HASH-INFORMATION",
        NotifyType::AUTHENTICATION_FAILED => "AUTHENTICATION-FAILED",
        NotifyType::INVALID_SIGNATURE => "INVALID-SIGNATURE",
        NotifyType::RESPONDER_LIFETIME => "RESPONDER-LIFETIME",
        NotifyType::INITIAL_CONTACT => "INITIAL-CONTACT",
        NotifyType::R_U_THERE => "R-U-THERE",
        NotifyType::R_U_THERE_ACK => "R-U-THERE-ACK",
        other => return format!("notification {}", other.0),
    };
    name.to_string()
}

/// Whether an identity names a party (a host name, a user, a certificate subject, a key)
/// rather than an address, which many hosts behind NATs may share.
fn names_a_party(identity: &crate::codec::Identity) -> bool {
    use crate::codec::Identity;
    !matches!(
        identity,
        Identity::Ipv4(_)
            | Identity::Ipv6(_)
            | Identity::Ipv4Subnet(..)
            | Identity::Ipv6Subnet(..)
            | Identity::Ipv4Range(..)
            | Identity::Ipv6Range(..)
    )
}
