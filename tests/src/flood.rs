//! A spoofing flood generator for the flood test and bench: first phase-1 messages (Main
//! Mode, and Aggressive Mode with a KE, a nonce and an ID) from random source addresses of
//! 198.18.0.0/15 (RFC 2544's benchmarking range), sent from a namespace of the test's own
//! in which that whole range is local (`ip route add local`), so that an ordinary UDP
//! socket may send from any of its addresses and receives every answer sent to any of
//! them, with the address it was sent to (IP_PKTINFO). Nothing leaves the test's
//! namespaces: the responder's route to the range points at the flood namespace.

use crate::netns::Netns;
use ike::codec::{
    Cookie, ExchangeType, Header, IdPayload, Identity, Message, Payload, PayloadType, SaPayload,
};
use nix::sys::socket::{
    recvmsg, sendmsg, setsockopt, sockopt, ControlMessage, ControlMessageOwned, MsgFlags,
    SockaddrIn,
};
use std::collections::HashMap;
use std::io::{IoSlice, IoSliceMut};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The spoofed sources: 198.18.0.0/15.
pub const RANGE: &str = "198.18.0.0/15";
/// The flood namespace's end of its link to the responder, and the responder's.
pub const FLOOD_ADDR: &str = "198.51.100.1";
pub const TARGET_LINK_ADDR: &str = "198.51.100.2";

/// xorshift64*: cookies and addresses need to differ, not to be secret.
pub struct Xorshift(pub u64);

impl Xorshift {
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A source address in 198.18.0.0/15, never .0 or .255 in the last byte.
    pub fn source(&mut self) -> Ipv4Addr {
        let r = self.next_u64();
        let b = (r >> 8) as u8 & 1;
        let c = (r >> 16) as u8;
        let d = 1 + ((r >> 24) as u8 % 254);
        Ipv4Addr::new(198, 18 + b, c, d)
    }
}

/// The `n`th of the 131,070 host addresses of 198.18.0.0/15 in a scrambled order (a
/// multiplier prime to their number is a bijection modulo it): no address repeats within
/// a flood of that many, so "one datagram per spoofed address" can be checked literally.
pub fn unique_source(n: u64) -> Ipv4Addr {
    const HOSTS: u64 = (1 << 17) - 2;
    let k = 1 + ((n % HOSTS) * 7919 % HOSTS);
    Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 18, 0, 0)) + k as u32)
}

/// What the flood sends: first messages built from an offer, Aggressive Mode with `id`.
pub struct FirstMessages {
    pub offer: SaPayload,
    /// The length of the Aggressive Mode KE (the offered group's public values).
    pub ke_len: usize,
    pub id: Identity,
}

impl FirstMessages {
    fn header(exchange: ExchangeType, icookie: [u8; 8]) -> Header {
        Header {
            initiator_cookie: Cookie(icookie),
            responder_cookie: Cookie::default(),
            next_payload: PayloadType::NONE,
            version: 0x10,
            exchange,
            flags: 0,
            message_id: 0,
            length: 0,
        }
    }

    /// Main Mode message 1 with initiator cookie `icookie`.
    pub fn main_mode(&self, icookie: [u8; 8]) -> Vec<u8> {
        Message {
            header: Self::header(ExchangeType::MAIN_MODE, icookie),
            payloads: vec![Payload::Sa(self.offer.clone())],
        }
        .emit()
        .unwrap_or_default()
    }

    /// Aggressive Mode message 1: the offer, a KE of random bytes (below the prime), a
    /// nonce and the ID.
    pub fn aggressive(&self, icookie: [u8; 8], rng: &mut Xorshift) -> Vec<u8> {
        let mut ke: Vec<u8> = (0..self.ke_len).map(|_| rng.next_u64() as u8).collect();
        if let Some(first) = ke.first_mut() {
            *first = 0x7f;
        }
        Message {
            header: Self::header(ExchangeType::AGGRESSIVE, icookie),
            payloads: vec![
                Payload::Sa(self.offer.clone()),
                Payload::Ke(ke),
                Payload::Nonce(rng.next_u64().to_be_bytes().repeat(2)),
                Payload::Id(IdPayload {
                    protocol: 17,
                    port: 500,
                    identity: self.id.clone(),
                }),
            ],
        }
        .emit()
        .unwrap_or_default()
    }
}

/// The flood namespace, linked to the responder's namespace, with the route both ways.
pub struct FloodNet {
    pub ns: Netns,
    socket: UdpSocket,
}

impl FloodNet {
    /// Makes the flood namespace, links it to `target` (whose end gets
    /// [`TARGET_LINK_ADDR`]) and routes the spoofed range towards it from `target`.
    pub fn new(tag: &str, target: &Netns) -> Result<FloodNet, String> {
        let ns = Netns::new(tag)?;
        Netns::link_named(
            &ns,
            "vflood",
            &format!("{FLOOD_ADDR}/24"),
            target,
            "vflood",
            &format!("{TARGET_LINK_ADDR}/24"),
        )?;
        ns.exec(&["ip", "route", "add", "local", RANGE, "dev", "lo"])?;
        ns.exec(&["ip", "route", "add", "default", "via", TARGET_LINK_ADDR])?;
        target.exec(&["ip", "route", "add", RANGE, "via", FLOOD_ADDR])?;
        let socket = ns.udp_socket(SocketAddr::from(([0, 0, 0, 0], 500)))?;
        setsockopt(&socket, sockopt::Ipv4PacketInfo, &true)
            .map_err(|e| format!("IP_PKTINFO: {e}"))?;
        Ok(FloodNet { ns, socket })
    }

    /// Sends `bytes` to `to` as if from `from`:500.
    pub fn send_from(&self, from: Ipv4Addr, to: SocketAddrV4, bytes: &[u8]) -> Result<(), String> {
        let info = nix::libc::in_pktinfo {
            ipi_ifindex: 0,
            ipi_spec_dst: nix::libc::in_addr {
                s_addr: u32::from(from).to_be(),
            },
            ipi_addr: nix::libc::in_addr { s_addr: 0 },
        };
        let cmsg = [ControlMessage::Ipv4PacketInfo(&info)];
        sendmsg(
            self.socket.as_raw_fd(),
            &[IoSlice::new(bytes)],
            &cmsg,
            MsgFlags::empty(),
            Some(&SockaddrIn::from(to)),
        )
        .map(|_| ())
        .map_err(|e| format!("sendmsg from {from}: {e}"))
    }

    /// Counts what arrives for any spoofed address, per address, until `stop` is set and
    /// a further `linger` has passed without a datagram.
    pub fn count_answers(
        &self,
        stop: Arc<AtomicBool>,
        linger: Duration,
    ) -> Result<std::thread::JoinHandle<Answers>, String> {
        let sock = self.socket.try_clone().map_err(|e| format!("clone: {e}"))?;
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .map_err(|e| format!("timeout: {e}"))?;
        Ok(std::thread::spawn(move || {
            let mut answers = Answers::default();
            let mut buf = vec![0u8; 65_536];
            let mut quiet_since: Option<Instant> = None;
            loop {
                let mut iov = [IoSliceMut::new(&mut buf)];
                let mut space = nix::cmsg_space!(nix::libc::in_pktinfo);
                let got = recvmsg::<SockaddrIn>(
                    sock.as_raw_fd(),
                    &mut iov,
                    Some(&mut space),
                    MsgFlags::empty(),
                );
                match got {
                    Ok(r) => {
                        quiet_since = None;
                        let to = r.cmsgs().ok().and_then(|mut c| {
                            c.find_map(|m| match m {
                                ControlMessageOwned::Ipv4PacketInfo(i) => {
                                    Some(Ipv4Addr::from(u32::from_be(i.ipi_addr.s_addr)))
                                }
                                _ => None,
                            })
                        });
                        answers.total += 1;
                        let icookie = r
                            .iovs()
                            .next()
                            .and_then(|b| <[u8; 8]>::try_from(b.get(..8)?).ok());
                        if let (Some(to), Some(c)) = (to, icookie) {
                            *answers.per_exchange.entry((to, c)).or_insert(0) += 1;
                        }
                    }
                    Err(_) => {
                        if stop.load(Ordering::Relaxed) {
                            let since = *quiet_since.get_or_insert_with(Instant::now);
                            if since.elapsed() >= linger {
                                break;
                            }
                        }
                    }
                }
            }
            answers
        }))
    }
}

/// The responder's answers to spoofed addresses, per first message (the address it
/// claimed and its initiator cookie): the flood's random addresses repeat, its cookies
/// do not.
#[derive(Default)]
pub struct Answers {
    pub total: u64,
    pub per_exchange: HashMap<(Ipv4Addr, [u8; 8]), u32>,
}

impl Answers {
    /// The most datagrams any one first message got, and to which address.
    pub fn most(&self) -> Option<(Ipv4Addr, u32)> {
        self.per_exchange
            .iter()
            .max_by_key(|(_, n)| **n)
            .map(|((a, _), n)| (*a, *n))
    }

    /// How many distinct addresses got anything.
    pub fn addresses(&self) -> usize {
        let set: std::collections::HashSet<_> = self.per_exchange.keys().map(|(a, _)| a).collect();
        set.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_sources_do_not_repeat_and_stay_in_the_range() {
        let mut seen = std::collections::HashSet::new();
        for n in 0..(1u64 << 17) - 2 {
            let a = unique_source(n);
            let o = a.octets();
            assert!(o[0] == 198 && (o[1] == 18 || o[1] == 19), "{a}");
            assert!(a != Ipv4Addr::new(198, 18, 0, 0) && a != Ipv4Addr::new(198, 19, 255, 255));
            assert!(seen.insert(a), "{a} twice");
        }
    }
}
