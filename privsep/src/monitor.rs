//! The parent's check of what the child asks of the kernel (isakmpd's monitor), against
//! the parent's own policy and table, never against anything the child says about itself:
//!
//! - an SPI only from a peer address some connection may negotiate with, to one of our
//!   addresses, with at most so many unused at once ([`crate::table`]);
//! - an SA or a policy only for a configured connection, between one of our addresses and
//!   that connection's peer (any address for a peer configured without one: a road
//!   warrior), with selectors inside the connection's `Local-ID` and `Remote-ID` (the two
//!   gateways when it has none), a transform and lifetime its suites allow, an inbound SA
//!   only on an SPI the parent allocated for that peer, under the reqid the parent assigns;
//! - a delete only of an SA or policy set the table says the parent installed.
//!
//! `check` returns the request to carry out (the parent's reqid in it; for a policy delete,
//! the policy set as recorded) or the reason it is refused.

use crate::kernel_map;
use crate::table::{NoRoom, SaKey, Table};
use ike::codec::IdPayload;
use ike::engine::{Direction, KernelRequest, PolicySpec, SaSpec, Selector};
use ike::policy::{
    Connection, ConnectionName, EncapMode, EspCipher, IntegAlg, IpsecProtocol, Peer, PeerName,
    Policy,
};
use std::fmt;
use std::net::IpAddr;

/// SPIs 1-255 are reserved (RFC 4303) and pluto avoids 0x100-0xFFF, which some stacks
/// treat specially; we allocate above both.
const SPI_MIN: u32 = *kernel::SPI_RANGE.start();

/// Whether an address is one of this host's (the caller knows its interfaces).
pub type Ours<'a> = &'a mut dyn FnMut(IpAddr) -> bool;

/// Why the monitor refuses a request of the child. The Display text is what the parent
/// logs and what the child is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    SpiMixedFamilies {
        src: IpAddr,
        dst: IpAddr,
    },
    SpiNotTowardsUs {
        dst: IpAddr,
    },
    /// No connection may negotiate with the address the SPI is for.
    SpiForStranger {
        src: IpAddr,
    },
    /// A bound of the parent's table was reached.
    NoRoom(NoRoom),
    /// An SA (named as `kernel::sa_name` does) that breaks the policy.
    Sa {
        subject: String,
        why: Objection,
    },
    DeleteSaNotInstalled {
        subject: String,
    },
    Policies {
        connection: ConnectionName,
        why: Objection,
    },
    DeletePoliciesNotInstalled {
        connection: ConnectionName,
        local: String,
        remote: String,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::SpiMixedFamilies { src, dst } => {
                write!(f, "SPI for {src} -> {dst}: mixed address families")
            }
            Refusal::SpiNotTowardsUs { dst } => {
                write!(f, "SPI towards {dst}, which is not an address of ours")
            }
            Refusal::SpiForStranger { src } => {
                write!(f, "SPI for {src}, with which no connection negotiates")
            }
            Refusal::NoRoom(e) => write!(f, "{e}"),
            Refusal::Sa { subject, why } => write!(f, "SA {subject}: {why}"),
            Refusal::DeleteSaNotInstalled { subject } => {
                write!(f, "delete of {subject}: not an SA the parent installed")
            }
            Refusal::Policies { connection, why } => write!(f, "policies for {connection}: {why}"),
            Refusal::DeletePoliciesNotInstalled {
                connection,
                local,
                remote,
            } => write!(
                f,
                "delete of policies for {connection} ({local} <-> {remote}): not installed by the parent"
            ),
        }
    }
}

impl std::error::Error for Refusal {}

impl From<NoRoom> for Refusal {
    fn from(e: NoRoom) -> Self {
        Refusal::NoRoom(e)
    }
}

/// What is wrong with an SA or a policy set the child asks for, measured against the
/// connection it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Objection {
    NoConnection(String),
    NoPeer(ConnectionName),
    MixedFamilies,
    /// Unspecified or multicast: no peer is ever there.
    NoPeerAddress(IpAddr),
    NotThePeer {
        remote: IpAddr,
        peer: PeerName,
        configured: IpAddr,
    },
    NotOurs(IpAddr),
    SpiNotAllocated {
        spi: u32,
        remote: IpAddr,
    },
    ReservedSpi(u32),
    /// `side` is "local" or "remote".
    IdNamesNoAddresses {
        side: &'static str,
    },
    OutsideId {
        side: &'static str,
        selector: String,
        allowed: String,
    },
    NoTransform {
        protocol: IpsecProtocol,
        cipher: Option<EspCipher>,
        integ: Option<IntegAlg>,
        mode: EncapMode,
        connection: ConnectionName,
    },
    Lifetime {
        seconds: u64,
        max: u64,
    },
    ZeroKilobytes,
    NotOffered {
        protocols: Vec<IpsecProtocol>,
        mode: EncapMode,
    },
    NoRoom(NoRoom),
}

impl fmt::Display for Objection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Objection::NoConnection(name) => {
                write!(f, "no connection {name:?} in the configuration")
            }
            Objection::NoPeer(c) => write!(f, "connection {c} has no peer"),
            Objection::MixedFamilies => f.write_str("mixed address families"),
            Objection::NoPeerAddress(a) => write!(f, "{a} is no peer address"),
            Objection::NotThePeer {
                remote,
                peer,
                configured,
            } => write!(
                f,
                "{remote} is not the address of peer {peer} ({configured})"
            ),
            Objection::NotOurs(a) => write!(f, "{a} is not an address of ours"),
            Objection::SpiNotAllocated { spi, remote } => write!(
                f,
                "inbound SPI {spi:#x} was not allocated for {remote} by the parent"
            ),
            Objection::ReservedSpi(spi) => write!(f, "reserved SPI {spi:#x}"),
            Objection::IdNamesNoAddresses { side } => {
                write!(f, "the {side} ID of the connection names no addresses")
            }
            Objection::OutsideId {
                side,
                selector,
                allowed,
            } => write!(
                f,
                "{side} selector {selector} is outside the connection's {allowed}"
            ),
            Objection::NoTransform {
                protocol,
                cipher,
                integ,
                mode,
                connection,
            } => write!(
                f,
                "{protocol:?} {cipher:?}/{integ:?} in {mode:?} mode is no transform of connection {connection}"
            ),
            Objection::Lifetime { seconds, max } => {
                write!(f, "lifetime of {seconds} s outside 1-{max} s")
            }
            Objection::ZeroKilobytes => f.write_str("lifetime of 0 KB"),
            Objection::NotOffered { protocols, mode } => write!(
                f,
                "{protocols:?} in {mode:?} mode is not what the connection's suites offer"
            ),
            Objection::NoRoom(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Objection {}

impl From<NoRoom> for Objection {
    fn from(e: NoRoom) -> Self {
        Objection::NoRoom(e)
    }
}

/// Why a request is refused, or the request to carry out.
pub fn check(
    policy: &Policy,
    table: &mut Table,
    ours: Ours<'_>,
    request: &KernelRequest,
) -> Result<KernelRequest, Refusal> {
    match request {
        KernelRequest::AllocSpi { protocol, src, dst } => {
            if src.is_ipv4() != dst.is_ipv4() {
                return Err(Refusal::SpiMixedFamilies {
                    src: *src,
                    dst: *dst,
                });
            }
            if !ours(*dst) {
                return Err(Refusal::SpiNotTowardsUs { dst: *dst });
            }
            if !policy
                .connections
                .iter()
                .any(|c| peer_of(policy, c).is_some_and(|p| remote_allowed(p, *src).is_ok()))
            {
                return Err(Refusal::SpiForStranger { src: *src });
            }
            table.larval_room(*src)?;
            Ok(KernelRequest::AllocSpi {
                protocol: *protocol,
                src: *src,
                dst: *dst,
            })
        }
        KernelRequest::AddSa(spec) => check_sa(policy, table, ours, spec)
            .map(KernelRequest::AddSa)
            .map_err(|why| Refusal::Sa {
                subject: sa_subject(spec),
                why,
            }),
        KernelRequest::DeleteSa {
            protocol,
            spi,
            src,
            dst,
        } => {
            let key = SaKey {
                protocol: *protocol,
                spi: *spi,
                dst: *dst,
            };
            let recorded =
                table.is_larval(&key, *src) || table.sa(&key).is_some_and(|r| r.src == *src);
            if !recorded {
                return Err(Refusal::DeleteSaNotInstalled {
                    subject: kernel::sa_name(kernel_map::protocol(*protocol), *spi, *src, *dst),
                });
            }
            Ok(request.clone())
        }
        KernelRequest::AddPolicy(spec) => check_policy(policy, table, ours, spec)
            .map(KernelRequest::AddPolicy)
            .map_err(|why| Refusal::Policies {
                connection: spec.connection.clone(),
                why,
            }),
        KernelRequest::DeletePolicy(spec) => match table.policy(spec) {
            Some(recorded) => Ok(KernelRequest::DeletePolicy(recorded.clone())),
            None => Err(Refusal::DeletePoliciesNotInstalled {
                connection: spec.connection.clone(),
                local: describe(&spec.local),
                remote: describe(&spec.remote),
            }),
        },
    }
}

/// A one-line description for the debug log (never the keys).
pub fn describe_request(request: &KernelRequest) -> String {
    match request {
        KernelRequest::AllocSpi { protocol, src, dst } => {
            format!("allocate {protocol:?} SPI {src} -> {dst}")
        }
        KernelRequest::AddSa(sa) => format!(
            "add {:?} {} for {} reqid {:#x}",
            sa.direction,
            sa_subject(sa),
            sa.connection,
            sa.reqid
        ),
        KernelRequest::DeleteSa {
            protocol,
            spi,
            src,
            dst,
        } => format!(
            "delete {}",
            kernel::sa_name(kernel_map::protocol(*protocol), *spi, *src, *dst)
        ),
        KernelRequest::AddPolicy(p) => format!(
            "add {:?} policies for {} ({} <-> {}) reqid {:#x}",
            p.mode,
            p.connection,
            describe(&p.local),
            describe(&p.remote),
            p.reqid
        ),
        KernelRequest::DeletePolicy(p) => format!(
            "delete policies for {} ({} <-> {})",
            p.connection,
            describe(&p.local),
            describe(&p.remote)
        ),
    }
}

fn sa_subject(spec: &SaSpec) -> String {
    kernel::sa_name(
        kernel_map::protocol(spec.protocol),
        spec.spi,
        spec.src,
        spec.dst,
    )
}

fn connection<'p>(policy: &'p Policy, name: &str) -> Result<&'p Connection, Objection> {
    policy
        .connections
        .iter()
        .find(|c| c.name == name)
        .ok_or_else(|| Objection::NoConnection(name.to_string()))
}

fn peer_of<'p>(policy: &'p Policy, c: &Connection) -> Option<&'p Peer> {
    policy.peers.iter().find(|p| p.name == c.peer)
}

/// The connection's peer may be at `remote`: its configured address, or any unicast
/// address of the same family when it has none (`Default`, or a peer found by its ID).
fn remote_allowed(peer: &Peer, remote: IpAddr) -> Result<(), Objection> {
    let configured = peer.address.ip();
    if remote.is_unspecified() || remote.is_multicast() {
        return Err(Objection::NoPeerAddress(remote));
    }
    if configured.is_unspecified() {
        return Ok(());
    }
    if configured == remote {
        Ok(())
    } else {
        Err(Objection::NotThePeer {
            remote,
            peer: peer.name.clone(),
            configured,
        })
    }
}

/// The selector a connection's ID allows on one side, given that side's gateway.
fn allowed_selector(id: &Option<IdPayload>, gateway: IpAddr) -> Option<Selector> {
    match id {
        Some(id) => Selector::from_id(id),
        None => Some(Selector::host(gateway)),
    }
}

/// `sel` must lie inside what the connection's ID allows. Without an ID in transport mode,
/// any single host of the gateway's family is taken too: behind a NAT a peer names a
/// gateway by an address we do not see (its own, or our outside one).
fn selector_ok(
    side: &'static str,
    id: &Option<IdPayload>,
    gateway: IpAddr,
    mode: EncapMode,
    sel: &Selector,
) -> Result<(), Objection> {
    let Some(allowed) = allowed_selector(id, gateway) else {
        return Err(Objection::IdNamesNoAddresses { side });
    };
    if allowed.contains(sel) {
        return Ok(());
    }
    let nat_host = id.is_none()
        && mode == EncapMode::Transport
        && sel.is_single_host()
        && sel.address.is_ipv4() == gateway.is_ipv4();
    if nat_host {
        return Ok(());
    }
    Err(Objection::OutsideId {
        side,
        selector: describe(sel),
        allowed: describe(&allowed),
    })
}

fn describe(s: &Selector) -> String {
    let net = match s.range_end {
        Some(end) => format!("{}-{end}", s.address),
        None => format!("{}/{}", s.address, s.prefix_len),
    };
    match (s.protocol, s.port) {
        (0, 0) => net,
        (p, 0) => format!("{net} proto {p}"),
        (p, port) => format!("{net} proto {p} port {port}"),
    }
}

/// The SA's protocol, cipher, integrity algorithm and mode are those of a transform of
/// the connection's suites (an AES key length inside the transform's accepted range); the
/// largest lifetime in seconds those transforms accept.
fn transform_allowed(policy: &Policy, c: &Connection, spec: &SaSpec) -> Result<u64, Objection> {
    let mut max_life = None;
    for t in c
        .suites
        .iter()
        .flat_map(|s| &s.protocols)
        .filter(|p| p.protocol == spec.protocol)
        .flat_map(|p| &p.transforms)
        .filter(|t| t.encap == spec.mode && t.integ == spec.integ)
    {
        let cipher_ok = match (t.cipher, spec.cipher) {
            (Some(EspCipher::AesCbc { key_bits: ours }), Some(EspCipher::AesCbc { key_bits }))
            | (
                Some(EspCipher::AesGcm16 { key_bits: ours }),
                Some(EspCipher::AesGcm16 { key_bits }),
            ) => {
                key_bits == ours
                    || policy
                        .key_length_range(&t.name)
                        .is_some_and(|(lo, hi)| lo <= key_bits && key_bits <= hi)
            }
            (ours, theirs) => ours == theirs,
        };
        if cipher_ok {
            max_life = Some(max_life.unwrap_or(0).max(t.lifetime.max));
        }
    }
    max_life.ok_or_else(|| Objection::NoTransform {
        protocol: spec.protocol,
        cipher: spec.cipher,
        integ: spec.integ,
        mode: spec.mode,
        connection: c.name.clone(),
    })
}

fn check_sa(
    policy: &Policy,
    table: &mut Table,
    ours: Ours<'_>,
    spec: &SaSpec,
) -> Result<SaSpec, Objection> {
    let c = connection(policy, &spec.connection)?;
    let peer = peer_of(policy, c).ok_or_else(|| Objection::NoPeer(c.name.clone()))?;
    let (local, remote) = match spec.direction {
        Direction::Inbound => (spec.dst, spec.src),
        Direction::Outbound => (spec.src, spec.dst),
    };
    if local.is_ipv4() != remote.is_ipv4() {
        return Err(Objection::MixedFamilies);
    }
    remote_allowed(peer, remote)?;
    if !ours(local) {
        return Err(Objection::NotOurs(local));
    }
    match spec.direction {
        Direction::Inbound => {
            let key = SaKey {
                protocol: spec.protocol,
                spi: spec.spi,
                dst: spec.dst,
            };
            if spec.spi < SPI_MIN || !table.is_larval(&key, remote) {
                return Err(Objection::SpiNotAllocated {
                    spi: spec.spi,
                    remote,
                });
            }
        }
        Direction::Outbound if spec.spi < 256 => {
            return Err(Objection::ReservedSpi(spec.spi));
        }
        Direction::Outbound => {}
    }
    selector_ok("local", &c.local_id, local, spec.mode, &spec.local)?;
    selector_ok("remote", &c.remote_id, remote, spec.mode, &spec.remote)?;
    let max_life = transform_allowed(policy, c, spec)?;
    if spec.lifetime.seconds == 0 || spec.lifetime.seconds > max_life {
        return Err(Objection::Lifetime {
            seconds: spec.lifetime.seconds,
            max: max_life,
        });
    }
    if spec.lifetime.kilobytes == Some(0) {
        return Err(Objection::ZeroKilobytes);
    }
    table.sa_room(&c.name, remote)?;
    let mut approved = spec.clone();
    approved.reqid = table.reqid(&c.name)?;
    Ok(approved)
}

fn check_policy(
    policy: &Policy,
    table: &mut Table,
    ours: Ours<'_>,
    spec: &PolicySpec,
) -> Result<PolicySpec, Objection> {
    let c = connection(policy, &spec.connection)?;
    let peer = peer_of(policy, c).ok_or_else(|| Objection::NoPeer(c.name.clone()))?;
    if spec.local_addr.is_ipv4() != spec.remote_addr.is_ipv4() {
        return Err(Objection::MixedFamilies);
    }
    remote_allowed(peer, spec.remote_addr)?;
    // Our end may be left to the kernel's route (an on-demand connection without a
    // Local-address), but then the local selector must come from the connection's ID.
    let wildcard_ok = spec.local_addr.is_unspecified() && c.local_id.is_some();
    if !wildcard_ok && !ours(spec.local_addr) {
        return Err(Objection::NotOurs(spec.local_addr));
    }
    selector_ok(
        "local",
        &c.local_id,
        spec.local_addr,
        spec.mode,
        &spec.local,
    )?;
    selector_ok(
        "remote",
        &c.remote_id,
        spec.remote_addr,
        spec.mode,
        &spec.remote,
    )?;
    let offered: Vec<(IpsecProtocol, EncapMode)> = c
        .suites
        .iter()
        .flat_map(|s| &s.protocols)
        .flat_map(|p| p.transforms.iter().map(move |t| (p.protocol, t.encap)))
        .collect();
    if spec.protocols.is_empty()
        || !spec
            .protocols
            .iter()
            .all(|p| offered.contains(&(*p, spec.mode)))
    {
        return Err(Objection::NotOffered {
            protocols: spec.protocols.clone(),
            mode: spec.mode,
        });
    }
    table.policy_room(spec)?;
    let mut approved = spec.clone();
    approved.reqid = table.reqid(&c.name)?;
    Ok(approved)
}

#[cfg(test)]
mod tests;
