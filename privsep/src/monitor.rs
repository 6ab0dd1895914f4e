//! The parent's check of what the child asks of the kernel (isakmpd's monitor): an SPI, an
//! SA or a policy only for a configured peer, and well formed. A refused request is logged
//! and answered with an error; nothing the child says is acted on unchecked.

use ike::engine::KernelRequest;
use ike::policy::Policy;
use std::net::IpAddr;

/// SPIs 1-255 are reserved (RFC 4303) and pluto avoids 0x100-0xFFF, which some stacks
/// treat specially; we allocate above both.
const SPI_MIN: u32 = *kernel::SPI_RANGE.start();

/// Why a request is refused, if it is.
pub fn check(policy: &Policy, request: &KernelRequest) -> Result<(), String> {
    let peer_ok = |a: IpAddr| {
        policy.default_peer.is_some() || policy.peers.iter().any(|p| p.address.ip() == a)
    };
    let one_side_is_peer = |src: IpAddr, dst: IpAddr| peer_ok(src) || peer_ok(dst);
    match request {
        KernelRequest::AllocSpi { src, .. } if !peer_ok(*src) => {
            Err(format!("SPI for {src}, which is no configured peer"))
        }
        KernelRequest::AddSa(sa) => {
            if !one_side_is_peer(sa.src, sa.dst) {
                return Err(format!(
                    "SA {} -> {}: neither end is a configured peer",
                    sa.src, sa.dst
                ));
            }
            if sa.spi < SPI_MIN && sa.direction == ike::engine::Direction::Inbound {
                return Err(format!("inbound SA with reserved SPI {:#x}", sa.spi));
            }
            if !policy.connections.iter().any(|c| c.name == sa.connection) {
                return Err(format!("SA for unknown connection {:?}", sa.connection));
            }
            Ok(())
        }
        KernelRequest::DeleteSa { src, dst, .. } if !one_side_is_peer(*src, *dst) => Err(format!(
            "delete of SA {src} -> {dst}: neither end is a configured peer"
        )),
        KernelRequest::AddPolicy(p) | KernelRequest::DeletePolicy(p) if !peer_ok(p.remote_addr) => {
            Err(format!(
                "policy towards {}, which is no configured peer",
                p.remote_addr
            ))
        }
        _ => Ok(()),
    }
}

/// A one-line description for the debug log (never the keys).
pub fn describe(request: &KernelRequest) -> String {
    match request {
        KernelRequest::AllocSpi { protocol, src, dst } => {
            format!("allocate {protocol:?} SPI {src} -> {dst}")
        }
        KernelRequest::AddSa(sa) => format!(
            "add {:?} {:?} SA {:08x} {} -> {} for {}",
            sa.direction, sa.protocol, sa.spi, sa.src, sa.dst, sa.connection
        ),
        KernelRequest::DeleteSa {
            protocol,
            spi,
            src,
            dst,
        } => format!("delete {protocol:?} SA {spi:08x} {src} -> {dst}"),
        KernelRequest::AddPolicy(p) => format!("add policies for {} ({:?})", p.connection, p.mode),
        KernelRequest::DeletePolicy(p) => format!("delete policies for {}", p.connection),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ike::conf::Conf;
    use ike::policy::IpsecProtocol;

    fn policy() -> Policy {
        let c = Conf::parse(
            "[Phase 1]\n192.0.2.2=peer\n[peer]\nPhase=1\nAddress=192.0.2.2\nAuthentication=k\n",
        )
        .expect("conf");
        Policy::from_conf(&c).expect("policy")
    }

    #[test]
    fn spis_only_for_configured_peers() {
        let p = policy();
        let ok = KernelRequest::AllocSpi {
            protocol: IpsecProtocol::Esp,
            src: "192.0.2.2".parse().unwrap(),
            dst: "192.0.2.1".parse().unwrap(),
        };
        let bad = KernelRequest::AllocSpi {
            protocol: IpsecProtocol::Esp,
            src: "203.0.113.9".parse().unwrap(),
            dst: "192.0.2.1".parse().unwrap(),
        };
        assert!(check(&p, &ok).is_ok());
        assert!(check(&p, &bad)
            .expect_err("refused")
            .contains("203.0.113.9"));
        let bad = KernelRequest::DeleteSa {
            protocol: IpsecProtocol::Esp,
            spi: 5000,
            src: "203.0.113.9".parse().unwrap(),
            dst: "198.51.100.1".parse().unwrap(),
        };
        assert!(check(&p, &bad).is_err());
    }
}
