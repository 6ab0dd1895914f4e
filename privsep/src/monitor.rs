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

use crate::table::{SaKey, Table};
use ike::codec::IdPayload;
use ike::engine::{Direction, KernelRequest, PolicySpec, SaSpec, Selector};
use ike::policy::{Connection, EncapMode, EspCipher, IpsecProtocol, Peer, Policy};
use std::net::IpAddr;

/// SPIs 1-255 are reserved (RFC 4303) and pluto avoids 0x100-0xFFF, which some stacks
/// treat specially; we allocate above both.
const SPI_MIN: u32 = *kernel::SPI_RANGE.start();

/// Whether an address is one of this host's (the caller knows its interfaces).
pub type Ours<'a> = &'a mut dyn FnMut(IpAddr) -> bool;

/// Why a request is refused, or the request to carry out.
pub fn check(
    policy: &Policy,
    table: &mut Table,
    ours: Ours<'_>,
    request: &KernelRequest,
) -> Result<KernelRequest, String> {
    match request {
        KernelRequest::AllocSpi { protocol, src, dst } => {
            if src.is_ipv4() != dst.is_ipv4() {
                return Err(format!("SPI for {src} -> {dst}: mixed address families"));
            }
            if !ours(*dst) {
                return Err(format!(
                    "SPI towards {dst}, which is not an address of ours"
                ));
            }
            if !policy
                .connections
                .iter()
                .any(|c| peer_of(policy, c).is_some_and(|p| remote_allowed(p, *src).is_ok()))
            {
                return Err(format!(
                    "SPI for {src}, with which no connection negotiates"
                ));
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
            .map_err(|e| format!("SA {}: {e}", sa_subject(spec))),
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
                return Err(format!(
                    "delete of {}: not an SA the parent installed",
                    kernel::sa_name(*protocol, *spi, *src, *dst)
                ));
            }
            Ok(request.clone())
        }
        KernelRequest::AddPolicy(spec) => check_policy(policy, table, ours, spec)
            .map(KernelRequest::AddPolicy)
            .map_err(|e| format!("policies for {}: {e}", spec.connection)),
        KernelRequest::DeletePolicy(spec) => match table.policy(spec) {
            Some(recorded) => Ok(KernelRequest::DeletePolicy(recorded.clone())),
            None => Err(format!(
                "delete of policies for {} ({} <-> {}): not installed by the parent",
                spec.connection,
                describe(&spec.local),
                describe(&spec.remote)
            )),
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
        } => format!("delete {}", kernel::sa_name(*protocol, *spi, *src, *dst)),
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
    kernel::sa_name(spec.protocol, spec.spi, spec.src, spec.dst)
}

fn connection<'p>(policy: &'p Policy, name: &str) -> Result<&'p Connection, String> {
    policy
        .connections
        .iter()
        .find(|c| c.name == name)
        .ok_or_else(|| format!("no connection {name:?} in the configuration"))
}

fn peer_of<'p>(policy: &'p Policy, c: &Connection) -> Option<&'p Peer> {
    policy.peers.iter().find(|p| p.name == c.peer)
}

/// The connection's peer may be at `remote`: its configured address, or any unicast
/// address of the same family when it has none (`Default`, or a peer found by its ID).
fn remote_allowed(peer: &Peer, remote: IpAddr) -> Result<(), String> {
    let configured = peer.address.ip();
    if remote.is_unspecified() || remote.is_multicast() {
        return Err(format!("{remote} is no peer address"));
    }
    if configured.is_unspecified() {
        return Ok(());
    }
    if configured == remote {
        Ok(())
    } else {
        Err(format!(
            "{remote} is not the address of peer {} ({configured})",
            peer.name
        ))
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
    side: &str,
    id: &Option<IdPayload>,
    gateway: IpAddr,
    mode: EncapMode,
    sel: &Selector,
) -> Result<(), String> {
    let Some(allowed) = allowed_selector(id, gateway) else {
        return Err(format!(
            "the {side} ID of the connection names no addresses"
        ));
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
    Err(format!(
        "{side} selector {} is outside the connection's {}",
        describe(sel),
        describe(&allowed)
    ))
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
fn transform_allowed(policy: &Policy, c: &Connection, spec: &SaSpec) -> Result<u64, String> {
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
    max_life.ok_or_else(|| {
        format!(
            "{:?} {:?}/{:?} in {:?} mode is no transform of connection {}",
            spec.protocol, spec.cipher, spec.integ, spec.mode, c.name
        )
    })
}

fn check_sa(
    policy: &Policy,
    table: &mut Table,
    ours: Ours<'_>,
    spec: &SaSpec,
) -> Result<SaSpec, String> {
    let c = connection(policy, &spec.connection)?;
    let peer = peer_of(policy, c).ok_or_else(|| format!("connection {} has no peer", c.name))?;
    let (local, remote) = match spec.direction {
        Direction::Inbound => (spec.dst, spec.src),
        Direction::Outbound => (spec.src, spec.dst),
    };
    if local.is_ipv4() != remote.is_ipv4() {
        return Err("mixed address families".into());
    }
    remote_allowed(peer, remote)?;
    if !ours(local) {
        return Err(format!("{local} is not an address of ours"));
    }
    match spec.direction {
        Direction::Inbound => {
            let key = SaKey {
                protocol: spec.protocol,
                spi: spec.spi,
                dst: spec.dst,
            };
            if spec.spi < SPI_MIN || !table.is_larval(&key, remote) {
                return Err(format!(
                    "inbound SPI {:#x} was not allocated for {remote} by the parent",
                    spec.spi
                ));
            }
        }
        Direction::Outbound if spec.spi < 256 => {
            return Err(format!("reserved SPI {:#x}", spec.spi));
        }
        Direction::Outbound => {}
    }
    selector_ok("local", &c.local_id, local, spec.mode, &spec.local)?;
    selector_ok("remote", &c.remote_id, remote, spec.mode, &spec.remote)?;
    let max_life = transform_allowed(policy, c, spec)?;
    if spec.lifetime.seconds == 0 || spec.lifetime.seconds > max_life {
        return Err(format!(
            "lifetime of {} s outside 1-{max_life} s",
            spec.lifetime.seconds
        ));
    }
    if spec.lifetime.kilobytes == Some(0) {
        return Err("lifetime of 0 KB".into());
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
) -> Result<PolicySpec, String> {
    let c = connection(policy, &spec.connection)?;
    let peer = peer_of(policy, c).ok_or_else(|| format!("connection {} has no peer", c.name))?;
    if spec.local_addr.is_ipv4() != spec.remote_addr.is_ipv4() {
        return Err("mixed address families".into());
    }
    remote_allowed(peer, spec.remote_addr)?;
    // Our end may be left to the kernel's route (an on-demand connection without a
    // Local-address), but then the local selector must come from the connection's ID.
    let wildcard_ok = spec.local_addr.is_unspecified() && c.local_id.is_some();
    if !wildcard_ok && !ours(spec.local_addr) {
        return Err(format!("{} is not an address of ours", spec.local_addr));
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
        return Err(format!(
            "{:?} in {:?} mode is not what the connection's suites offer",
            spec.protocols, spec.mode
        ));
    }
    table.policy_room(spec)?;
    let mut approved = spec.clone();
    approved.reqid = table.reqid(&c.name)?;
    Ok(approved)
}

#[cfg(test)]
mod tests;
