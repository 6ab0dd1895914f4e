//! The engine's kernel requests and events in the `kernel` crate's terms and back. The
//! `kernel` crate knows XFRM and nothing of IKE, so the parent translates at its edge:
//! requests (with their keys, copied into the kernel's zeroizing [`kernel::Key`]) on the
//! way in, outcomes (under the engine's request id) and events on the way out.

use ike::engine::{Direction, KernelEvent, KernelRequest, PolicySpec, RequestId, SaSpec, Selector};
use ike::policy::{EncapMode, EspCipher, IntegAlg, IpsecProtocol, Lifetime};

/// The engine's protocol as the kernel crate's (for `kernel::sa_name`, among others).
pub fn protocol(p: IpsecProtocol) -> kernel::IpsecProtocol {
    match p {
        IpsecProtocol::Esp => kernel::IpsecProtocol::Esp,
        IpsecProtocol::Ah => kernel::IpsecProtocol::Ah,
    }
}

fn protocol_back(p: kernel::IpsecProtocol) -> IpsecProtocol {
    match p {
        kernel::IpsecProtocol::Esp => IpsecProtocol::Esp,
        kernel::IpsecProtocol::Ah => IpsecProtocol::Ah,
    }
}

fn mode(m: EncapMode) -> kernel::EncapMode {
    match m {
        EncapMode::Tunnel => kernel::EncapMode::Tunnel,
        EncapMode::Transport => kernel::EncapMode::Transport,
    }
}

fn direction(d: Direction) -> kernel::Direction {
    match d {
        Direction::Inbound => kernel::Direction::Inbound,
        Direction::Outbound => kernel::Direction::Outbound,
    }
}

fn cipher(c: EspCipher) -> kernel::EspCipher {
    match c {
        EspCipher::TripleDes => kernel::EspCipher::TripleDes,
        EspCipher::AesCbc { key_bits } => kernel::EspCipher::AesCbc { key_bits },
        EspCipher::AesGcm16 { key_bits } => kernel::EspCipher::AesGcm16 { key_bits },
        EspCipher::Null => kernel::EspCipher::Null,
    }
}

fn integ(i: IntegAlg) -> kernel::IntegAlg {
    match i {
        IntegAlg::HmacMd5 => kernel::IntegAlg::HmacMd5,
        IntegAlg::HmacSha1 => kernel::IntegAlg::HmacSha1,
        IntegAlg::HmacSha256 => kernel::IntegAlg::HmacSha256,
        IntegAlg::HmacSha384 => kernel::IntegAlg::HmacSha384,
        IntegAlg::HmacSha512 => kernel::IntegAlg::HmacSha512,
    }
}

fn lifetime(l: Lifetime) -> kernel::Lifetime {
    kernel::Lifetime {
        seconds: l.seconds,
        kilobytes: l.kilobytes,
    }
}

fn selector(s: &Selector) -> kernel::Selector {
    kernel::Selector {
        address: s.address,
        prefix_len: s.prefix_len,
        range_end: s.range_end,
        protocol: s.protocol,
        port: s.port,
    }
}

/// An SA in the kernel's terms; the keys are copied into zeroizing storage.
pub fn sa(s: &SaSpec) -> kernel::SaSpec {
    kernel::SaSpec {
        connection: s.connection.to_string(),
        direction: direction(s.direction),
        protocol: protocol(s.protocol),
        spi: s.spi,
        src: s.src,
        dst: s.dst,
        mode: mode(s.mode),
        udp_encap: s.udp_encap,
        cipher: s.cipher.map(cipher),
        enc_key: kernel::Key::new(s.enc_key.as_bytes().to_vec()),
        integ: s.integ.map(integ),
        auth_key: kernel::Key::new(s.auth_key.as_bytes().to_vec()),
        lifetime: lifetime(s.lifetime),
        local: selector(&s.local),
        remote: selector(&s.remote),
        reqid: s.reqid,
    }
}

pub fn policy(p: &PolicySpec) -> kernel::PolicySpec {
    kernel::PolicySpec {
        connection: p.connection.to_string(),
        local: selector(&p.local),
        remote: selector(&p.remote),
        local_addr: p.local_addr,
        remote_addr: p.remote_addr,
        mode: mode(p.mode),
        protocols: p.protocols.iter().copied().map(protocol).collect(),
        reqid: p.reqid,
    }
}

/// The engine's request as an XFRM operation.
pub fn request(r: &KernelRequest) -> kernel::XfrmRequest {
    match r {
        KernelRequest::AllocSpi {
            protocol: p,
            src,
            dst,
        } => kernel::XfrmRequest::AllocSpi {
            protocol: protocol(*p),
            src: *src,
            dst: *dst,
        },
        KernelRequest::AddSa(s) => kernel::XfrmRequest::AddSa(sa(s)),
        KernelRequest::DeleteSa {
            protocol: p,
            spi,
            src,
            dst,
        } => kernel::XfrmRequest::DeleteSa {
            protocol: protocol(*p),
            spi: *spi,
            src: *src,
            dst: *dst,
        },
        KernelRequest::AddPolicy(p) => kernel::XfrmRequest::AddPolicy(policy(p)),
        KernelRequest::DeletePolicy(p) => kernel::XfrmRequest::DeletePolicy(policy(p)),
    }
}

/// What the engine hears about its request `id`.
pub fn outcome(id: RequestId, o: kernel::Outcome) -> KernelEvent {
    match o {
        kernel::Outcome::SpiAllocated(spi) => KernelEvent::SpiAllocated { id, spi },
        kernel::Outcome::Installed => KernelEvent::Installed { id },
        kernel::Outcome::Failed(reason) => KernelEvent::Failed { id, reason },
    }
}

/// A kernel event as the engine's.
pub fn event(e: kernel::XfrmEvent) -> KernelEvent {
    match e {
        kernel::XfrmEvent::Acquire {
            local,
            remote,
            protocol,
        } => KernelEvent::Acquire {
            local,
            remote,
            protocol,
        },
        kernel::XfrmEvent::Expire {
            protocol: p,
            spi,
            dst,
            hard,
        } => KernelEvent::Expire {
            protocol: protocol_back(p),
            spi,
            dst,
            hard,
        },
        kernel::XfrmEvent::Mapping { old, new } => KernelEvent::Mapping { old, new },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ike::crypto::Secret;

    fn sel(a: &str, p: u8) -> Selector {
        Selector {
            address: a.parse().unwrap(),
            prefix_len: p,
            range_end: Some("10.1.0.9".parse().unwrap()),
            protocol: 17,
            port: 1701,
        }
    }

    #[test]
    fn an_sa_keeps_every_field_and_its_keys() {
        let s = SaSpec {
            connection: "c".into(),
            direction: Direction::Inbound,
            protocol: IpsecProtocol::Esp,
            spi: 0x1234abcd,
            src: "192.0.2.2".parse().unwrap(),
            dst: "192.0.2.1".parse().unwrap(),
            mode: EncapMode::Transport,
            udp_encap: Some((4500, 4501)),
            cipher: Some(EspCipher::AesGcm16 { key_bits: 256 }),
            enc_key: Secret::new(vec![7; 36]),
            integ: Some(IntegAlg::HmacSha384),
            auth_key: Secret::new(vec![9; 48]),
            lifetime: Lifetime {
                seconds: 3600,
                kilobytes: Some(5),
            },
            local: sel("10.1.0.1", 32),
            remote: sel("10.2.0.0", 24),
            reqid: 0x4002,
        };
        let k = sa(&s);
        assert_eq!(
            k,
            kernel::SaSpec {
                connection: "c".into(),
                direction: kernel::Direction::Inbound,
                protocol: kernel::IpsecProtocol::Esp,
                spi: 0x1234abcd,
                src: s.src,
                dst: s.dst,
                mode: kernel::EncapMode::Transport,
                udp_encap: Some((4500, 4501)),
                cipher: Some(kernel::EspCipher::AesGcm16 { key_bits: 256 }),
                enc_key: kernel::Key::new(vec![7; 36]),
                integ: Some(kernel::IntegAlg::HmacSha384),
                auth_key: kernel::Key::new(vec![9; 48]),
                lifetime: kernel::Lifetime {
                    seconds: 3600,
                    kilobytes: Some(5)
                },
                local: kernel::Selector {
                    address: "10.1.0.1".parse().unwrap(),
                    prefix_len: 32,
                    range_end: Some("10.1.0.9".parse().unwrap()),
                    protocol: 17,
                    port: 1701
                },
                remote: kernel::Selector {
                    address: "10.2.0.0".parse().unwrap(),
                    prefix_len: 24,
                    range_end: Some("10.1.0.9".parse().unwrap()),
                    protocol: 17,
                    port: 1701
                },
                reqid: 0x4002,
            }
        );
        // The kernel's copy of the keys is never printed.
        assert!(!format!("{k:?}").contains("7, 7"), "{k:?}");
    }

    #[test]
    fn policies_deletes_and_spi_requests_map_field_for_field() {
        let p = PolicySpec {
            connection: "c".into(),
            local: sel("10.1.0.0", 24),
            remote: sel("10.2.0.0", 24),
            local_addr: "192.0.2.1".parse().unwrap(),
            remote_addr: "192.0.2.2".parse().unwrap(),
            mode: EncapMode::Tunnel,
            protocols: vec![IpsecProtocol::Ah, IpsecProtocol::Esp],
            reqid: 0x4003,
        };
        let kernel::XfrmRequest::DeletePolicy(k) = request(&KernelRequest::DeletePolicy(p.clone()))
        else {
            panic!("not a policy delete");
        };
        assert_eq!(k.mode, kernel::EncapMode::Tunnel);
        assert_eq!(
            k.protocols,
            [kernel::IpsecProtocol::Ah, kernel::IpsecProtocol::Esp]
        );
        assert_eq!(
            (k.local_addr, k.remote_addr, k.reqid),
            (p.local_addr, p.remote_addr, 0x4003)
        );
        assert_eq!(k.local.port, 1701);
        let (src, dst) = (p.remote_addr, p.local_addr);
        assert_eq!(
            request(&KernelRequest::DeleteSa {
                protocol: IpsecProtocol::Ah,
                spi: 5,
                src,
                dst
            }),
            kernel::XfrmRequest::DeleteSa {
                protocol: kernel::IpsecProtocol::Ah,
                spi: 5,
                src,
                dst
            }
        );
        assert_eq!(
            request(&KernelRequest::AllocSpi {
                protocol: IpsecProtocol::Esp,
                src,
                dst
            }),
            kernel::XfrmRequest::AllocSpi {
                protocol: kernel::IpsecProtocol::Esp,
                src,
                dst
            }
        );
    }

    #[test]
    fn outcomes_carry_the_engines_id_and_events_map_back() {
        let id = RequestId(42);
        assert_eq!(
            outcome(id, kernel::Outcome::SpiAllocated(0x1001)),
            KernelEvent::SpiAllocated { id, spi: 0x1001 }
        );
        assert_eq!(
            outcome(id, kernel::Outcome::Installed),
            KernelEvent::Installed { id }
        );
        assert_eq!(
            outcome(id, kernel::Outcome::Failed("no".into())),
            KernelEvent::Failed {
                id,
                reason: "no".into()
            }
        );
        let (a, b) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        assert_eq!(
            event(kernel::XfrmEvent::Acquire {
                local: a,
                remote: b,
                protocol: 6
            }),
            KernelEvent::Acquire {
                local: a,
                remote: b,
                protocol: 6
            }
        );
        assert_eq!(
            event(kernel::XfrmEvent::Expire {
                protocol: kernel::IpsecProtocol::Ah,
                spi: 9,
                dst: b,
                hard: true
            }),
            KernelEvent::Expire {
                protocol: IpsecProtocol::Ah,
                spi: 9,
                dst: b,
                hard: true
            }
        );
        let (old, new) = (
            "192.0.2.2:4500".parse().unwrap(),
            "192.0.2.3:4501".parse().unwrap(),
        );
        assert_eq!(
            event(kernel::XfrmEvent::Mapping { old, new }),
            KernelEvent::Mapping { old, new }
        );
    }
}
