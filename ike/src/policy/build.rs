//! Building the typed [`Policy`] from the configuration database.
//!
//! Peer sections (`[Phase 1]` values and every connection's `ISAKMP-peer`):
//! `Phase=1`, `Address` (else the `[Phase 1]` key when it is an address; else the peer only
//! answers: address `0.0.0.0`/`::`), `Port` (500), `Local-address`, `Configuration`
//! (default `Default-main-mode`), `Authentication` (the pre-shared key: kept out of the
//! policy, see [`secrets`]), `ID`, `Remote-ID`, `DPD-check-interval` (else `[General]`),
//! `DPD-action` = `clear` (default) | `restart` | `hold` (pluto's dpdaction), and `NAT-T` =
//! `yes|no|on|off|true|false` (default on; `[General] NAT-T` is the fallback).
//!
//! ID sections (`ID-type` and): `IPV4_ADDR`/`IPV6_ADDR` `Address`;
//! `IPV4_ADDR_SUBNET`/`IPV6_ADDR_SUBNET` `Network`, `Netmask` (a mask or a prefix length);
//! `IPV4_ADDR_RANGE`/`IPV6_ADDR_RANGE` `Start`, `End`; `FQDN`/`USER_FQDN`/`KEY_ID` `Name`;
//! phase 2 IDs also take `Protocol` (number or tcp/udp/icmp/...) and `Port`.

use super::names::*;
use super::*;
use super::{ConnectionName, PeerName};
use crate::conf::{defaults, Conf};
use crate::crypto::Secret;
use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

fn err(section: &str, tag: &str, reason: impl Into<String>) -> PolicyError {
    PolicyError {
        section: section.to_string(),
        tag: tag.to_string(),
        reason: reason.into(),
    }
}

/// Parse the `X,Y:Z` offer/accept form (or a single `X`, meaning exactly `X`).
pub fn parse_range(value: &str) -> Option<LifetimeRange> {
    let num = |s: &str| s.trim().parse::<u64>().ok();
    let v = value.trim();
    let r = match v.split_once(',') {
        None => {
            let x = num(v)?;
            LifetimeRange {
                default: x,
                min: x,
                max: x,
            }
        }
        Some((x, rest)) => {
            let (y, z) = rest.split_once(':')?;
            LifetimeRange {
                default: num(x)?,
                min: num(y)?,
                max: num(z)?,
            }
        }
    };
    (r.min <= r.default && r.default <= r.max).then_some(r)
}

/// The pre-shared keys, for the privileged parent to hand to the helpers: (peer section name,
/// as in [`Credentials::PreShared`], key bytes) for every section with a non-empty
/// `Authentication`.
pub fn secrets(conf: &Conf) -> Vec<(String, Secret)> {
    conf.sections()
        .into_iter()
        .filter_map(|s| {
            conf.get_str(s, "Authentication")
                .filter(|v| !v.is_empty())
                .map(|v| (s.to_string(), Secret::from_slice(v.as_bytes())))
        })
        .collect()
}

/// A copy of the configuration with every `Authentication` value removed, for the
/// unprivileged child. The tag stays, empty, so that the child's [`Policy::from_conf`] still
/// types the peer as pre-shared key (it needs only the key's name, the peer section).
pub fn redact_secrets(conf: &Conf) -> Conf {
    conf.with_tag_blanked("Authentication")
}

fn req<'a>(conf: &'a Conf, section: &str, tag: &str) -> Result<&'a str, PolicyError> {
    conf.get_str(section, tag)
        .ok_or_else(|| err(section, tag, "missing"))
}

/// Resolve a referenced section, giving its stored spelling, or say who referenced it.
fn section_ref<'a>(
    conf: &'a Conf,
    from: &str,
    tag: &str,
    name: &str,
) -> Result<&'a str, PolicyError> {
    conf.section_name(name).ok_or_else(|| {
        err(
            from,
            tag,
            format!("refers to section [{name}] which does not exist"),
        )
    })
}

fn check_phase(conf: &Conf, section: &str, want: u64) -> Result<(), PolicyError> {
    match conf.get_str(section, "Phase") {
        None => Ok(()),
        Some(v) if v.trim().parse::<u64>().ok() == Some(want) => Ok(()),
        Some(v) => Err(err(section, "Phase", format!("is {v:?}, expected {want}"))),
    }
}

fn parse_bool(section: &str, tag: &str, v: &str) -> Result<bool, PolicyError> {
    match v.trim().to_ascii_lowercase().as_str() {
        "yes" | "on" | "true" | "1" => Ok(true),
        "no" | "off" | "false" | "0" => Ok(false),
        _ => Err(err(section, tag, format!("{v:?} is not yes/no"))),
    }
}

fn parse_ip(section: &str, tag: &str, v: &str) -> Result<IpAddr, PolicyError> {
    v.trim()
        .parse()
        .map_err(|_| err(section, tag, format!("{v:?} is not an IP address")))
}

fn get_u64(conf: &Conf, section: &str, tag: &str) -> Result<Option<u64>, PolicyError> {
    match conf.get_str(section, tag) {
        None => Ok(None),
        Some(v) => v
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| err(section, tag, format!("{v:?} is not a number"))),
    }
}

impl Policy {
    /// Build the policy; every missing or unknown reference is a [`PolicyError`].
    pub fn from_conf(conf: &Conf) -> Result<Policy, PolicyError> {
        let general = general(conf)?;
        let mut peers: Vec<Peer> = Vec::new();
        let mut default_peer = None;
        for key in conf.tags("Phase 1") {
            let name = req(conf, "Phase 1", key)?.trim();
            let canon = section_ref(conf, "Phase 1", key, name)?;
            if key.eq_ignore_ascii_case("Default") {
                default_peer = Some(canon.to_string());
            }
            let key_addr = key.parse::<IpAddr>().ok();
            if !key.eq_ignore_ascii_case("Default") && key_addr.is_none() {
                return Err(err(
                    "Phase 1",
                    key,
                    "tag is neither an IP address nor Default",
                ));
            }
            if let Some(p) = peers.iter_mut().find(|p| p.name == canon) {
                // Listed under two addresses: keep the first, fill an unknown address.
                if p.address.ip().is_unspecified() {
                    if let Some(a) = key_addr {
                        p.address.set_ip(a);
                    }
                }
                continue;
            }
            peers.push(build_peer(conf, canon, key_addr, &general)?);
        }

        let mut connections: Vec<Connection> = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        for (tag, active) in [("Connections", true), ("Passive-connections", false)] {
            for name in conf.get_list("Phase 2", tag).unwrap_or_default() {
                let canon = section_ref(conf, "Phase 2", tag, &name)?;
                if !seen.insert(canon.to_ascii_lowercase()) {
                    continue;
                }
                let conn = build_connection(conf, canon, active)?;
                if !peers.iter().any(|p| p.name == conn.peer) {
                    peers.push(build_peer(conf, &conn.peer, None, &general)?);
                }
                connections.push(conn);
            }
        }
        let key_lengths = key_length_ranges(conf, &peers, &connections)?;
        Ok(Policy {
            peers,
            connections,
            default_peer,
            general,
            key_lengths,
            x509: Default::default(),
        })
    }
}

fn general(conf: &Conf) -> Result<GeneralSettings, PolicyError> {
    let g = "General";
    let listen_on = match conf.get_list(g, "Listen-on") {
        None => Vec::new(),
        Some(l) => l
            .iter()
            .map(|a| parse_ip(g, "Listen-on", a))
            .collect::<Result<_, _>>()?,
    };
    let retransmits = get_u64(conf, g, "Retransmits")?.unwrap_or(3);
    Ok(GeneralSettings {
        retransmits: u32::try_from(retransmits).map_err(|_| err(g, "Retransmits", "too large"))?,
        exchange_max_time: get_u64(conf, g, "Exchange-max-time")?.unwrap_or(120),
        check_interval: get_u64(conf, g, "Check-interval")?.unwrap_or(60),
        dpd_check_interval: get_u64(conf, g, "DPD-check-interval")?.unwrap_or(0),
        dpd_timeout: positive(g, "DPD-timeout", get_u64(conf, g, "DPD-timeout")?)?,
        nat_t_keepalive: get_u64(conf, g, "NAT-T-Keepalive")?.unwrap_or(20),
        listen_on,
        max_half_open: limit(conf, g, "Max-half-open", 8192)?,
        max_half_open_per_address: limit(conf, g, "Max-half-open-per-address", 16)?,
        aggressive_mode_rate: limit(conf, g, "Aggressive-mode-rate", 20)?,
        unique_ids: match conf.get_str(g, "Unique-ids") {
            None => true,
            Some(v) => parse_bool(g, "Unique-ids", v)?,
        },
        fail_closed: match conf.get_str(g, "Fail-closed") {
            None => true,
            Some(v) => parse_bool(g, "Fail-closed", v)?,
        },
    })
}

/// A count limit: at least 1, at most what a u32 holds.
fn limit(conf: &Conf, section: &str, tag: &str, default: u32) -> Result<u32, PolicyError> {
    match get_u64(conf, section, tag)? {
        None => Ok(default),
        Some(0) => Err(err(section, tag, "must be at least 1")),
        Some(v) => u32::try_from(v).map_err(|_| err(section, tag, "too large")),
    }
}

/// A seconds value that must not be 0.
fn positive(section: &str, tag: &str, v: Option<u64>) -> Result<Option<u64>, PolicyError> {
    match v {
        Some(0) => Err(err(section, tag, "must be at least 1 second")),
        v => Ok(v),
    }
}

fn build_peer(
    conf: &Conf,
    name: &str,
    key_addr: Option<IpAddr>,
    general: &GeneralSettings,
) -> Result<Peer, PolicyError> {
    check_phase(conf, name, 1)?;
    let port = match get_u64(conf, name, "Port")? {
        None => 500,
        Some(p) => u16::try_from(p).map_err(|_| err(name, "Port", format!("{p} is not a port")))?,
    };
    let ip = match conf.get_str(name, "Address") {
        Some(a) => parse_ip(name, "Address", a)?,
        None => key_addr.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
    };
    let local_address = match conf.get_str(name, "Local-address") {
        Some(a) => Some(SocketAddr::new(parse_ip(name, "Local-address", a)?, 500)),
        None => None,
    };
    let cfg_name = conf
        .get_str(name, "Configuration")
        .unwrap_or(defaults::DEFAULT_MAIN_MODE)
        .trim();
    let cfg = section_ref(conf, name, "Configuration", cfg_name)?;
    let mode = match conf
        .get_str(cfg, "EXCHANGE_TYPE")
        .map(|v| v.trim().to_ascii_uppercase())
    {
        None => Phase1Mode::Main,
        Some(v) if v == "ID_PROT" || v == "MAIN" => Phase1Mode::Main,
        Some(v) if v == "AGGRESSIVE" => Phase1Mode::Aggressive,
        Some(v) => {
            return Err(err(
                cfg,
                "EXCHANGE_TYPE",
                format!("{v:?} is not ID_PROT or AGGRESSIVE"),
            ))
        }
    };
    let list = conf
        .get_list(cfg, "Transforms")
        .ok_or_else(|| err(cfg, "Transforms", "missing"))?;
    if list.is_empty() {
        return Err(err(cfg, "Transforms", "empty list"));
    }
    let mut transforms = Vec::new();
    for t in &list {
        let ts = section_ref(conf, cfg, "Transforms", t)?;
        transforms.push(phase1_transform(conf, ts)?);
    }
    if mode == Phase1Mode::Aggressive {
        // The KE payload goes out with the offer: every transform must use one group.
        if let Some(t) = transforms.iter().find(|t| t.group != transforms[0].group) {
            return Err(err(
                cfg,
                "Transforms",
                format!(
                    "aggressive mode needs one DH group, but {} and {} differ",
                    transforms[0].name, t.name
                ),
            ));
        }
    }
    let credentials = if conf.get_str(name, "Authentication").is_some() {
        Credentials::PreShared {
            secret: name.to_string(),
        }
    } else if transforms.iter().any(|t| t.auth == AuthMethod::RsaSig) {
        if let Some(t) = transforms.iter().find(|t| t.auth == AuthMethod::PreShared) {
            return Err(err(
                name,
                "Authentication",
                format!("missing, but transform {} uses pre-shared keys", t.name),
            ));
        }
        let key = conf
            .get_str("X509-Certificates", "Private-key")
            .unwrap_or("/etc/isakmpd/private/local.key");
        Credentials::RsaSig {
            secret: key.trim().to_string(),
            peer_public_key: None,
        }
    } else {
        return Err(err(
            name,
            "Authentication",
            "missing: the transforms use pre-shared keys",
        ));
    };
    let local_id = match conf.get_str(name, "ID") {
        Some(id) => Some(phase1_id(conf, name, "ID", id)?),
        None => match conf.get_str("General", "Default-phase-1-ID") {
            Some(id) => Some(phase1_id(conf, "General", "Default-phase-1-ID", id)?),
            None => None,
        },
    };
    let remote_id = match conf.get_str(name, "Remote-ID") {
        Some(id) => Some(phase1_id(conf, name, "Remote-ID", id)?),
        None => None,
    };
    let dpd_interval =
        get_u64(conf, name, "DPD-check-interval")?.unwrap_or(general.dpd_check_interval);
    let dpd_timeout = match positive(name, "DPD-timeout", get_u64(conf, name, "DPD-timeout")?)? {
        Some(t) => Some(t),
        None => general.dpd_timeout,
    };
    let dpd_action = match conf
        .get_str(name, "DPD-action")
        .map(|v| v.trim().to_ascii_lowercase())
    {
        None => DpdAction::Clear,
        Some(v) if v == "clear" => DpdAction::Clear,
        Some(v) if v == "restart" => DpdAction::Restart,
        Some(v) if v == "hold" => DpdAction::Hold,
        Some(v) => {
            return Err(err(
                name,
                "DPD-action",
                format!("{v:?} is not clear, restart or hold"),
            ))
        }
    };
    let nat_t = match conf
        .get_str(name, "NAT-T")
        .or_else(|| conf.get_str("General", "NAT-T"))
    {
        None => true,
        Some(v) => parse_bool(name, "NAT-T", v)?,
    };
    Ok(Peer {
        name: PeerName::from(name),
        address: SocketAddr::new(ip, port),
        local_address,
        mode,
        transforms,
        credentials,
        local_id,
        remote_id,
        dpd_interval,
        dpd_timeout,
        dpd_action,
        nat_t,
    })
}

/// The seconds and kilobytes ranges of a transform's `Life` list.
fn lives(
    conf: &Conf,
    xf: &str,
    fallback: &str,
) -> Result<(LifetimeRange, Option<LifetimeRange>), PolicyError> {
    let list = conf
        .get_list(xf, "Life")
        .unwrap_or_else(|| vec![fallback.to_string()]);
    let mut secs = None;
    let mut kb = None;
    for l in &list {
        let ls = section_ref(conf, xf, "Life", l)?;
        let ty = req(conf, ls, "LIFE_TYPE")?.trim().to_ascii_uppercase();
        let dur = req(conf, ls, "LIFE_DURATION")?;
        let r = parse_range(dur).ok_or_else(|| {
            err(
                ls,
                "LIFE_DURATION",
                format!("{dur:?} is not X or X,Y:Z with Y <= X <= Z"),
            )
        })?;
        match ty.as_str() {
            "SECONDS" => secs = Some(r),
            "KILOBYTES" => kb = Some(r),
            _ => {
                return Err(err(
                    ls,
                    "LIFE_TYPE",
                    format!("{ty:?} is not SECONDS or KILOBYTES"),
                ))
            }
        }
    }
    let secs = match secs {
        Some(s) => s,
        None => {
            let d = conf
                .get_str(fallback, "LIFE_DURATION")
                .unwrap_or("3600,60:86400");
            parse_range(d)
                .ok_or_else(|| err(fallback, "LIFE_DURATION", format!("{d:?} is not X,Y:Z")))?
        }
    };
    Ok((secs, kb))
}

fn key_bits(conf: &Conf, xf: &str) -> Result<Option<u16>, PolicyError> {
    match conf.get_str(xf, "KEY_LENGTH") {
        None => Ok(None),
        Some(v) => {
            let r = parse_range(v)
                .ok_or_else(|| err(xf, "KEY_LENGTH", format!("{v:?} is not X or X,Y:Z")))?;
            match r.default {
                128 | 192 | 256 => Ok(Some(r.default as u16)),
                b => Err(err(
                    xf,
                    "KEY_LENGTH",
                    format!("{b} bits is not 128, 192 or 256"),
                )),
            }
        }
    }
}

fn phase1_transform(conf: &Conf, xf: &str) -> Result<Phase1Transform, PolicyError> {
    let enc = req(conf, xf, "ENCRYPTION_ALGORITHM")?
        .trim()
        .to_ascii_uppercase();
    let bits = key_bits(conf, xf)?;
    let encr = match (enc.as_str(), bits) {
        ("3DES_CBC", None) => EncrAlg::TripleDesCbc,
        ("3DES_CBC", Some(_)) => {
            return Err(err(xf, "KEY_LENGTH", "3DES_CBC has a fixed key length"))
        }
        ("AES_CBC", None | Some(128)) => EncrAlg::AesCbc128,
        ("AES_CBC", Some(192)) => EncrAlg::AesCbc192,
        ("AES_CBC", Some(_)) => EncrAlg::AesCbc256,
        _ => {
            return Err(err(
                xf,
                "ENCRYPTION_ALGORITHM",
                format!("{enc:?} is not supported (3DES_CBC, AES_CBC)"),
            ))
        }
    };
    let h = req(conf, xf, "HASH_ALGORITHM")?;
    let hash = hash_from_conf(h)
        .ok_or_else(|| err(xf, "HASH_ALGORITHM", format!("{h:?} is not supported")))?;
    let a = req(conf, xf, "AUTHENTICATION_METHOD")?;
    let auth = match a.trim().to_ascii_uppercase().as_str() {
        "PRE_SHARED" => AuthMethod::PreShared,
        "RSA_SIG" => AuthMethod::RsaSig,
        _ => {
            return Err(err(
                xf,
                "AUTHENTICATION_METHOD",
                format!("{a:?} is not PRE_SHARED or RSA_SIG"),
            ))
        }
    };
    let g = req(conf, xf, "GROUP_DESCRIPTION")?;
    let group = group_from_conf(g)
        .ok_or_else(|| err(xf, "GROUP_DESCRIPTION", format!("{g:?} is not supported")))?;
    if conf.get_str(xf, "PRF").is_some() {
        return Err(err(xf, "PRF", "a negotiated PRF is not supported"));
    }
    let (lifetime, _) = lives(conf, xf, defaults::LIFE_MAIN_MODE)?;
    Ok(Phase1Transform {
        name: xf.to_string(),
        encr,
        hash,
        group,
        auth,
        lifetime,
    })
}

fn parse_v4(s: &str, t: &str, v: &str) -> Result<Ipv4Addr, PolicyError> {
    v.trim()
        .parse()
        .map_err(|_| err(s, t, format!("{v:?} is not an IPv4 address")))
}

fn parse_v6(s: &str, t: &str, v: &str) -> Result<Ipv6Addr, PolicyError> {
    v.trim()
        .parse()
        .map_err(|_| err(s, t, format!("{v:?} is not an IPv6 address")))
}

fn mask_v4(s: &str, v: &str) -> Result<Ipv4Addr, PolicyError> {
    if let Ok(len) = v.trim().parse::<u32>() {
        if len <= 32 {
            return Ok(Ipv4Addr::from(u32::MAX.checked_shl(32 - len).unwrap_or(0)));
        }
    }
    parse_v4(s, "Netmask", v)
}

fn mask_v6(s: &str, v: &str) -> Result<Ipv6Addr, PolicyError> {
    if let Ok(len) = v.trim().parse::<u32>() {
        if len <= 128 {
            return Ok(Ipv6Addr::from(
                u128::MAX.checked_shl(128 - len).unwrap_or(0),
            ));
        }
    }
    parse_v6(s, "Netmask", v)
}

/// The identity of an ID section.
fn identity(conf: &Conf, s: &str) -> Result<Identity, PolicyError> {
    let ty = req(conf, s, "ID-type")?.trim().to_ascii_uppercase();
    let name = |conf: &Conf| req(conf, s, "Name").map(|n| n.as_bytes().to_vec());
    Ok(match ty.as_str() {
        "IPV4_ADDR" => Identity::Ipv4(parse_v4(s, "Address", req(conf, s, "Address")?)?),
        "IPV6_ADDR" => Identity::Ipv6(parse_v6(s, "Address", req(conf, s, "Address")?)?),
        "IPV4_ADDR_SUBNET" => Identity::Ipv4Subnet(
            parse_v4(s, "Network", req(conf, s, "Network")?)?,
            mask_v4(s, req(conf, s, "Netmask")?)?,
        ),
        "IPV6_ADDR_SUBNET" => Identity::Ipv6Subnet(
            parse_v6(s, "Network", req(conf, s, "Network")?)?,
            mask_v6(s, req(conf, s, "Netmask")?)?,
        ),
        "IPV4_ADDR_RANGE" => Identity::Ipv4Range(
            parse_v4(s, "Start", req(conf, s, "Start")?)?,
            parse_v4(s, "End", req(conf, s, "End")?)?,
        ),
        "IPV6_ADDR_RANGE" => Identity::Ipv6Range(
            parse_v6(s, "Start", req(conf, s, "Start")?)?,
            parse_v6(s, "End", req(conf, s, "End")?)?,
        ),
        "FQDN" => Identity::Fqdn(name(conf)?),
        "USER_FQDN" => Identity::UserFqdn(name(conf)?),
        "KEY_ID" => Identity::KeyId(name(conf)?),
        "DER_ASN1_DN" => {
            let dn = req(conf, s, "Name")?;
            Identity::DerAsn1Dn(
                crate::x509::parse_dn(dn).map_err(|e| err(s, "Name", format!("{dn:?}: {e}")))?,
            )
        }
        _ => {
            return Err(err(
                s,
                "ID-type",
                format!("{ty:?} is not a supported ID type"),
            ))
        }
    })
}

fn phase1_id(conf: &Conf, from: &str, tag: &str, name: &str) -> Result<Identity, PolicyError> {
    let s = section_ref(conf, from, tag, name.trim())?;
    identity(conf, s)
}

fn ip_protocol(s: &str, v: &str) -> Result<u8, PolicyError> {
    if let Ok(n) = v.trim().parse::<u8>() {
        return Ok(n);
    }
    Ok(match v.trim().to_ascii_lowercase().as_str() {
        "icmp" => 1,
        "tcp" => 6,
        "udp" => 17,
        "gre" => 47,
        "esp" => 50,
        "ah" => 51,
        "ipv6-icmp" | "icmp6" => 58,
        _ => {
            return Err(err(
                s,
                "Protocol",
                format!("{v:?} is not a protocol number or name"),
            ))
        }
    })
}

fn phase2_id(conf: &Conf, from: &str, tag: &str, name: &str) -> Result<IdPayload, PolicyError> {
    let s = section_ref(conf, from, tag, name.trim())?;
    let identity = identity(conf, s)?;
    let protocol = match conf.get_str(s, "Protocol") {
        Some(p) => ip_protocol(s, p)?,
        None => 0,
    };
    let port = match get_u64(conf, s, "Port")? {
        None => 0,
        Some(p) => u16::try_from(p).map_err(|_| err(s, "Port", format!("{p} is not a port")))?,
    };
    Ok(IdPayload {
        protocol,
        port,
        identity,
    })
}

fn build_connection(conf: &Conf, name: &str, active: bool) -> Result<Connection, PolicyError> {
    check_phase(conf, name, 2)?;
    let peer_ref = req(conf, name, "ISAKMP-peer")?.trim();
    let peer = section_ref(conf, name, "ISAKMP-peer", peer_ref)?.to_string();
    let cfg_name = conf
        .get_str(name, "Configuration")
        .unwrap_or(defaults::DEFAULT_QUICK_MODE)
        .trim();
    let cfg = section_ref(conf, name, "Configuration", cfg_name)?;
    let suite_names = conf
        .get_list(cfg, "Suites")
        .ok_or_else(|| err(cfg, "Suites", "missing"))?;
    if suite_names.is_empty() {
        return Err(err(cfg, "Suites", "empty list"));
    }
    let mut suites = Vec::new();
    for sn in &suite_names {
        let ss = section_ref(conf, cfg, "Suites", sn)?;
        suites.push(suite(conf, ss)?);
    }
    let local_id = match conf.get_str(name, "Local-ID") {
        Some(id) => Some(phase2_id(conf, name, "Local-ID", id)?),
        None => None,
    };
    let remote_id = match conf.get_str(name, "Remote-ID") {
        Some(id) => Some(phase2_id(conf, name, "Remote-ID", id)?),
        None => None,
    };
    let tries = match get_u64(conf, name, "Keying-tries")? {
        Some(n) => Some((name, n)),
        None => get_u64(conf, "General", "Keying-tries")?.map(|n| ("General", n)),
    };
    let keying_tries = match tries {
        None => 0,
        Some((section, n)) => u32::try_from(n)
            .map_err(|_| err(section, "Keying-tries", format!("{n} is too large")))?,
    };
    Ok(Connection {
        name: ConnectionName::from(name),
        peer: PeerName::from(peer),
        local_id,
        remote_id,
        suites,
        active,
        keying_tries,
    })
}

fn suite(conf: &Conf, ss: &str) -> Result<Suite, PolicyError> {
    let protos = conf
        .get_list(ss, "Protocols")
        .ok_or_else(|| err(ss, "Protocols", "missing"))?;
    if protos.is_empty() {
        return Err(err(ss, "Protocols", "empty list"));
    }
    let mut protocols: Vec<ProtocolProposal> = Vec::new();
    for p in &protos {
        let ps = section_ref(conf, ss, "Protocols", p)?;
        let pid = req(conf, ps, "PROTOCOL_ID")?.trim().to_ascii_uppercase();
        let protocol = match pid.as_str() {
            "IPSEC_ESP" => IpsecProtocol::Esp,
            "IPSEC_AH" => IpsecProtocol::Ah,
            _ => {
                return Err(err(
                    ps,
                    "PROTOCOL_ID",
                    format!("{pid:?} is not IPSEC_ESP or IPSEC_AH"),
                ))
            }
        };
        if protocols.iter().any(|q| q.protocol == protocol) {
            return Err(err(
                ss,
                "Protocols",
                format!("{pid} appears twice in one suite"),
            ));
        }
        let xfs = conf
            .get_list(ps, "Transforms")
            .ok_or_else(|| err(ps, "Transforms", "missing"))?;
        if xfs.is_empty() {
            return Err(err(ps, "Transforms", "empty list"));
        }
        let mut transforms = Vec::new();
        for x in &xfs {
            let xs = section_ref(conf, ps, "Transforms", x)?;
            transforms.push(ipsec_transform(conf, xs, protocol)?);
        }
        protocols.push(ProtocolProposal {
            protocol,
            transforms,
        });
    }
    // One Quick Mode has one KE payload: a suite's PFS groups must agree.
    let mut groups = protocols
        .iter()
        .flat_map(|p| p.transforms.iter().filter_map(|t| t.pfs_group));
    if let Some(first) = groups.next() {
        if groups.any(|g| g != first) {
            return Err(err(
                ss,
                "Protocols",
                "the transforms of one suite use different PFS groups",
            ));
        }
    }
    Ok(Suite {
        name: ss.to_string(),
        protocols,
    })
}

fn ipsec_transform(
    conf: &Conf,
    xs: &str,
    protocol: IpsecProtocol,
) -> Result<IpsecTransform, PolicyError> {
    let tid = req(conf, xs, "TRANSFORM_ID")?.trim().to_ascii_uppercase();
    let bits = key_bits(conf, xs)?;
    let auth = match conf.get_str(xs, "AUTHENTICATION_ALGORITHM") {
        None => None,
        Some(a) => Some(integ_from_conf(a).ok_or_else(|| {
            err(
                xs,
                "AUTHENTICATION_ALGORITHM",
                format!("{a:?} is not supported"),
            )
        })?),
    };
    let (cipher, integ) = match protocol {
        IpsecProtocol::Esp => {
            let c = match tid.as_str() {
                "3DES" => EspCipher::TripleDes,
                "AES" | "AES_CBC" => EspCipher::AesCbc {
                    key_bits: bits.unwrap_or(128),
                },
                "AES_GCM_16" => EspCipher::AesGcm16 {
                    key_bits: bits.unwrap_or(128),
                },
                "NULL" => EspCipher::Null,
                _ => {
                    return Err(err(
                        xs,
                        "TRANSFORM_ID",
                        format!("{tid:?} is not a supported ESP transform"),
                    ))
                }
            };
            if matches!(c, EspCipher::TripleDes | EspCipher::Null) && bits.is_some() {
                return Err(err(
                    xs,
                    "KEY_LENGTH",
                    format!("{tid} has no variable key length"),
                ));
            }
            if matches!(c, EspCipher::AesGcm16 { .. }) && auth.is_some() {
                return Err(err(
                    xs,
                    "AUTHENTICATION_ALGORITHM",
                    "AES_GCM_16 authenticates itself",
                ));
            }
            if c == EspCipher::Null && auth.is_none() {
                return Err(err(
                    xs,
                    "AUTHENTICATION_ALGORITHM",
                    "ESP NULL needs an authentication algorithm",
                ));
            }
            (Some(c), auth)
        }
        IpsecProtocol::Ah => {
            let i = integ_from_conf(&tid).ok_or_else(|| {
                err(
                    xs,
                    "TRANSFORM_ID",
                    format!("{tid:?} is not a supported AH transform"),
                )
            })?;
            if auth.is_some_and(|a| a != i) {
                return Err(err(
                    xs,
                    "AUTHENTICATION_ALGORITHM",
                    format!("does not agree with TRANSFORM_ID {tid}"),
                ));
            }
            (None, Some(i))
        }
    };
    let encap = match conf
        .get_str(xs, "ENCAPSULATION_MODE")
        .map(|v| v.trim().to_ascii_uppercase())
    {
        None => EncapMode::Tunnel,
        Some(v) if v == "TUNNEL" => EncapMode::Tunnel,
        Some(v) if v == "TRANSPORT" => EncapMode::Transport,
        Some(v) => {
            return Err(err(
                xs,
                "ENCAPSULATION_MODE",
                format!("{v:?} is not TUNNEL or TRANSPORT"),
            ))
        }
    };
    let pfs_group = match conf.get_str(xs, "GROUP_DESCRIPTION") {
        None => None,
        Some(g) => Some(
            group_from_conf(g)
                .ok_or_else(|| err(xs, "GROUP_DESCRIPTION", format!("{g:?} is not supported")))?,
        ),
    };
    let (lifetime, lifetime_kb) = lives(conf, xs, defaults::LIFE_QUICK_MODE)?;
    Ok(IpsecTransform {
        name: xs.to_string(),
        cipher,
        integ,
        encap,
        pfs_group,
        lifetime,
        lifetime_kb,
    })
}

/// The `X,Y:Z` key-length ranges (with `Y < Z`) of every transform in use.
fn key_length_ranges(
    conf: &Conf,
    peers: &[Peer],
    connections: &[Connection],
) -> Result<std::collections::BTreeMap<String, (u16, u16)>, PolicyError> {
    let names = peers
        .iter()
        .flat_map(|p| p.transforms.iter().map(|t| t.name.as_str()))
        .chain(connections.iter().flat_map(|c| {
            c.suites.iter().flat_map(|s| {
                s.protocols
                    .iter()
                    .flat_map(|p| p.transforms.iter().map(|t| t.name.as_str()))
            })
        }));
    let mut out = std::collections::BTreeMap::new();
    for name in names {
        let Some(v) = conf.get_str(name, "KEY_LENGTH") else {
            continue;
        };
        let Some(r) = parse_range(v) else {
            continue; // refused earlier by key_bits
        };
        if r.min < r.max {
            if r.min < 128 || r.max > 256 {
                return Err(err(
                    name,
                    "KEY_LENGTH",
                    format!("accepted range {}..{} is outside 128..256", r.min, r.max),
                ));
            }
            out.insert(name.to_ascii_lowercase(), (r.min as u16, r.max as u16));
        }
    }
    Ok(out)
}
