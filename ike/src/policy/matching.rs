//! Matching a peer's offer against our policy (responder) and checking a responder's choice
//! (initiator), with a log line that says what each side offered when nothing fits.

use super::names::*;
use super::proposal::wire_protocol;
use super::*;
use crate::codec::{
    ipsec_attr, oakley_attr, transform_id, Proposal, ProtocolId, SaPayload, Transform,
};
use std::fmt;

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "no proposal chosen: peer offered [{}], we accept [{}]: {}",
            self.theirs.join(", "),
            self.ours.join(", "),
            self.reasons.join("; ")
        )
    }
}

impl std::error::Error for Mismatch {}

fn range_text(r: &LifetimeRange) -> String {
    if r.min == r.max {
        format!("{}s", r.min)
    } else {
        format!("{}..{}s", r.min, r.max)
    }
}

/// Human description of one of our phase-1 transforms, e.g.
/// `AES-256-SHA2_256-MODP2048-PSK life 60..86400s`.
pub(crate) fn describe_p1(t: &Phase1Transform) -> String {
    format!(
        "{}-{}-{}-{} life {}",
        encr_label(t.encr),
        hash_label(t.hash),
        group_label(t.group),
        auth_label(t.auth),
        range_text(&t.lifetime)
    )
}

/// Why an offered lifetime is refused (one of the differences in a Mismatch's reasons).
#[derive(Debug, Clone, PartialEq, Eq)]
enum LifeRefused {
    /// Shorter than our minimum; `what` names the attribute, e.g. "life (s)".
    BelowMinimum {
        what: &'static str,
        offered: u64,
        minimum: u64,
    },
    /// A responder's reply lengthened what we offered; `ours` is said in phase 1 only.
    AboveOffered {
        offered: u64,
        unit: &'static str,
        ours: Option<u64>,
    },
}

impl fmt::Display for LifeRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LifeRefused::BelowMinimum {
                what,
                offered,
                minimum,
            } => write!(f, "{what} {offered} below our minimum {minimum}"),
            LifeRefused::AboveOffered {
                offered,
                unit,
                ours,
            } => {
                write!(f, "life {offered}{unit} above what we offered")?;
                match ours {
                    Some(o) => write!(f, " ({o}{unit})"),
                    None => Ok(()),
                }
            }
        }
    }
}

impl std::error::Error for LifeRefused {}

/// Life check: the agreed value and whether it was cut to our maximum.
fn check_life(
    offered: Option<u64>,
    ours: &LifetimeRange,
    what: &'static str,
) -> Result<(u64, bool), LifeRefused> {
    match offered {
        None => Ok((ours.default, false)),
        Some(l) if l < ours.min => Err(LifeRefused::BelowMinimum {
            what,
            offered: l,
            minimum: ours.min,
        }),
        Some(l) if l > ours.max => Ok((ours.max, true)),
        Some(l) => Ok((l, false)),
    }
}

// ---------------------------------------------------------------- phase 1

/// The attributes of a peer's phase-1 transform, as numbers.
#[derive(Default)]
struct RawP1 {
    enc: Option<u64>,
    key_len: Option<u64>,
    hash: Option<u64>,
    auth: Option<u64>,
    group: Option<u64>,
    life_s: Option<u64>,
    life_kb: Option<u64>,
    /// The first attribute we cannot take at all.
    problem: Option<String>,
}

fn raw_p1(t: &Transform) -> RawP1 {
    let mut r = RawP1::default();
    let mut life_type: Option<u64> = None;
    for a in &t.attributes {
        let Some(v) = a.as_u64() else {
            r.problem
                .get_or_insert(format!("attribute {} value too long", a.kind));
            continue;
        };
        let slot = match a.kind {
            oakley_attr::ENCRYPTION_ALGORITHM => &mut r.enc,
            oakley_attr::KEY_LENGTH => &mut r.key_len,
            oakley_attr::HASH_ALGORITHM => &mut r.hash,
            oakley_attr::AUTHENTICATION_METHOD => &mut r.auth,
            oakley_attr::GROUP_DESCRIPTION => &mut r.group,
            oakley_attr::LIFE_TYPE => {
                life_type = Some(v);
                continue;
            }
            oakley_attr::LIFE_DURATION => match life_type {
                Some(t) if t == u64::from(oakley_attr::LIFE_SECONDS) => &mut r.life_s,
                Some(t) if t == u64::from(oakley_attr::LIFE_KILOBYTES) => &mut r.life_kb,
                _ => {
                    r.problem
                        .get_or_insert("LIFE_DURATION without a known LIFE_TYPE".into());
                    continue;
                }
            },
            oakley_attr::PRF => {
                r.problem
                    .get_or_insert("PRF attribute not supported".into());
                continue;
            }
            k => {
                r.problem
                    .get_or_insert(format!("unsupported attribute {k}"));
                continue;
            }
        };
        if slot.replace(v).is_some() {
            r.problem
                .get_or_insert(format!("attribute {} repeated", a.kind));
        }
    }
    r
}

fn raw_enc_label(enc: Option<u64>, bits: Option<u64>) -> String {
    match (enc, bits) {
        (None, _) => "no-cipher".into(),
        (Some(e), b) => match encr_from_oakley(e, b) {
            Some(x) => encr_label(x).into(),
            None => match e {
                1 => "DES".into(),
                3 => "BLOWFISH".into(),
                6 => "CAST".into(),
                7 => format!("AES-{}", b.unwrap_or(0)),
                e => format!("cipher#{e}"),
            },
        },
    }
}

fn raw_hash_label(h: Option<u64>) -> String {
    match h {
        None => "no-hash".into(),
        Some(h) => hash_from_oakley(h)
            .map(|x| hash_label(x).to_string())
            .unwrap_or_else(|| format!("hash#{h}")),
    }
}

fn raw_group_label(g: Option<u64>) -> String {
    match g {
        None => "no-group".into(),
        Some(1) => "MODP768".into(),
        Some(g) => group_from_id(g)
            .map(|x| group_label(x).to_string())
            .unwrap_or_else(|| format!("group#{g}")),
    }
}

fn raw_auth_label(a: Option<u64>) -> String {
    match a {
        None => "no-auth".into(),
        Some(a) => match auth_from_oakley(a) {
            Some(x) => auth_label(x).into(),
            None => match a {
                2 => "DSS".into(),
                65001 => "XAUTH_PSK".into(),
                65005 => "XAUTH_RSA".into(),
                a => format!("auth#{a}"),
            },
        },
    }
}

fn describe_raw_p1(r: &RawP1) -> String {
    let mut s = format!(
        "{}-{}-{}-{}",
        raw_enc_label(r.enc, r.key_len),
        raw_hash_label(r.hash),
        raw_group_label(r.group),
        raw_auth_label(r.auth)
    );
    if let Some(l) = r.life_s {
        s.push_str(&format!(" life {l}s"));
    }
    if let Some(k) = r.life_kb {
        s.push_str(&format!(" {k}KB"));
    }
    s
}

/// Compare one peer transform with one of ours: the agreed lifetime or the differences.
/// Accepted key lengths of a transform section (see [`Policy::key_lengths`]).
type Ranges<'a> = &'a dyn Fn(&str) -> Option<(u16, u16)>;

fn aes_bits(e: EncrAlg) -> Option<u16> {
    match e {
        EncrAlg::AesCbc128 => Some(128),
        EncrAlg::AesCbc192 => Some(192),
        EncrAlg::AesCbc256 => Some(256),
        EncrAlg::TripleDesCbc => None,
    }
}

/// Whether an AES key length `bits` lies in an accepted range.
fn in_range(bits: u16, range: Option<(u16, u16)>) -> bool {
    range.is_some_and(|(lo, hi)| lo <= bits && bits <= hi)
}

fn match_p1(
    r: &RawP1,
    ours: &Phase1Transform,
    cap: bool,
    range: Option<(u16, u16)>,
) -> Result<(Lifetime, bool, EncrAlg), Vec<String>> {
    let mut d = Vec::new();
    let enc = r.enc.and_then(|e| encr_from_oakley(e, r.key_len));
    let enc_ok = enc == Some(ours.encr)
        || (aes_bits(ours.encr).is_some()
            && enc.and_then(aes_bits).is_some_and(|b| in_range(b, range)));
    if !enc_ok {
        d.push(format!(
            "cipher {} != {}",
            raw_enc_label(r.enc, r.key_len),
            encr_label(ours.encr)
        ));
    }
    if r.hash.and_then(hash_from_oakley) != Some(ours.hash) {
        d.push(format!(
            "hash {} != {}",
            raw_hash_label(r.hash),
            hash_label(ours.hash)
        ));
    }
    if r.group.and_then(group_from_id) != Some(ours.group) {
        d.push(format!(
            "group {} != {}",
            raw_group_label(r.group),
            group_label(ours.group)
        ));
    }
    if r.auth.and_then(auth_from_oakley) != Some(ours.auth) {
        d.push(format!(
            "auth {} != {}",
            raw_auth_label(r.auth),
            auth_label(ours.auth)
        ));
    }
    let life = if cap {
        check_life(r.life_s, &ours.lifetime, "life (s)")
    } else {
        // A reply must not lengthen what we offered.
        let mut lim = ours.lifetime;
        lim.max = lim.default;
        check_life(r.life_s, &lim, "life (s)").and_then(|(l, cut)| {
            if cut {
                Err(LifeRefused::AboveOffered {
                    offered: r.life_s.unwrap_or(0),
                    unit: "s",
                    ours: Some(ours.lifetime.default),
                })
            } else {
                Ok((l, false))
            }
        })
    };
    let life = match life {
        Ok(l) => Some(l),
        Err(e) => {
            d.push(e.to_string());
            None
        }
    };
    match (d.is_empty(), life) {
        (true, Some((seconds, cut))) => Ok((
            Lifetime {
                seconds,
                kilobytes: r.life_kb,
            },
            cut,
            enc.unwrap_or(ours.encr),
        )),
        _ => Err(d),
    }
}

/// The differences with the closest of our transforms, for the log.
fn best_reason(diffs: Vec<Vec<String>>) -> String {
    diffs
        .into_iter()
        .min_by_key(Vec::len)
        .map(|d| d.join(", "))
        .unwrap_or_else(|| "we have no transforms".into())
}

fn p1_transforms_checked<'a>(
    offer: &'a SaPayload,
    theirs: &mut Vec<String>,
    reasons: &mut Vec<String>,
) -> Vec<(&'a Proposal, &'a Transform, RawP1)> {
    let mut out = Vec::new();
    for p in &offer.proposals {
        if p.protocol != ProtocolId::ISAKMP {
            theirs.push(format!("proposal #{} protocol {}", p.number, p.protocol.0));
            reasons.push(format!(
                "proposal #{}: protocol {} is not ISAKMP",
                p.number, p.protocol.0
            ));
            continue;
        }
        for t in &p.transforms {
            let r = raw_p1(t);
            let desc = describe_raw_p1(&r);
            theirs.push(desc.clone());
            if t.transform_id != transform_id::KEY_IKE {
                reasons.push(format!(
                    "{desc}: transform id {} is not KEY_IKE",
                    t.transform_id
                ));
                continue;
            }
            if let Some(pr) = &r.problem {
                reasons.push(format!("{desc}: {pr}"));
                continue;
            }
            out.push((p, t, r));
        }
    }
    out
}

/// Responder: the first of the peer's transforms (in their order) that equals one of ours
/// with a lifetime in our range (a longer one is accepted, cut to our maximum, and flagged
/// for a RESPONDER-LIFETIME notify).
pub fn choose_phase1(
    offer: &SaPayload,
    ours: &[Phase1Transform],
) -> Result<ChosenPhase1, Mismatch> {
    choose_phase1_in(offer, ours, &|_| None)
}

fn choose_phase1_in(
    offer: &SaPayload,
    ours: &[Phase1Transform],
    ranges: Ranges<'_>,
) -> Result<ChosenPhase1, Mismatch> {
    let mut theirs = Vec::new();
    let mut reasons = Vec::new();
    for (p, t, r) in p1_transforms_checked(offer, &mut theirs, &mut reasons) {
        let mut diffs = Vec::new();
        for o in ours {
            match match_p1(&r, o, true, ranges(&o.name)) {
                Ok((lifetime, cut, encr)) => {
                    return Ok(ChosenPhase1 {
                        proposal_number: p.number,
                        transform_number: t.number,
                        transform: Phase1Transform { encr, ..o.clone() },
                        lifetime,
                        responder_lifetime: cut,
                    })
                }
                Err(d) => diffs.push(d),
            }
        }
        reasons.push(format!("{}: {}", describe_raw_p1(&r), best_reason(diffs)));
    }
    if offer.proposals.is_empty() {
        reasons.push("the SA has no proposal".into());
    }
    Err(Mismatch {
        ours: ours.iter().map(describe_p1).collect(),
        theirs,
        reasons,
    })
}

/// Initiator: the responder must have chosen exactly one proposal with exactly one
/// transform, equal to one we offered, with a lifetime no longer than we offered.
pub fn accept_phase1_reply(
    reply: &SaPayload,
    offered: &[Phase1Transform],
) -> Result<ChosenPhase1, Mismatch> {
    let mut theirs = Vec::new();
    let mut reasons = Vec::new();
    let count: usize = reply.proposals.iter().map(|p| p.transforms.len()).sum();
    if reply.proposals.len() != 1 || count != 1 {
        for p in &reply.proposals {
            for t in &p.transforms {
                theirs.push(describe_raw_p1(&raw_p1(t)));
            }
        }
        reasons.push(format!(
            "the reply must hold one proposal with one transform, it holds {} proposals with {count} transforms",
            reply.proposals.len()
        ));
        return Err(Mismatch {
            ours: offered.iter().map(describe_p1).collect(),
            theirs,
            reasons,
        });
    }
    for (p, t, r) in p1_transforms_checked(reply, &mut theirs, &mut reasons) {
        let mut diffs = Vec::new();
        for o in offered {
            match match_p1(&r, o, false, None) {
                Ok((lifetime, _, _)) => {
                    return Ok(ChosenPhase1 {
                        proposal_number: p.number,
                        transform_number: t.number,
                        transform: o.clone(),
                        lifetime,
                        responder_lifetime: false,
                    })
                }
                Err(d) => diffs.push(d),
            }
        }
        reasons.push(format!(
            "{}: not one we offered: {}",
            describe_raw_p1(&r),
            best_reason(diffs)
        ));
    }
    Err(Mismatch {
        ours: offered.iter().map(describe_p1).collect(),
        theirs,
        reasons,
    })
}

// ---------------------------------------------------------------- phase 2

#[derive(Default)]
struct RawP2 {
    group: Option<u64>,
    encap: Option<u64>,
    auth: Option<u64>,
    key_len: Option<u64>,
    life_s: Option<u64>,
    life_kb: Option<u64>,
    problem: Option<String>,
}

fn raw_p2(t: &Transform) -> RawP2 {
    let mut r = RawP2::default();
    let mut life_type: Option<u64> = None;
    for a in &t.attributes {
        let Some(v) = a.as_u64() else {
            r.problem
                .get_or_insert(format!("attribute {} value too long", a.kind));
            continue;
        };
        let slot = match a.kind {
            ipsec_attr::GROUP_DESCRIPTION => &mut r.group,
            ipsec_attr::ENCAPSULATION_MODE => &mut r.encap,
            ipsec_attr::AUTHENTICATION_ALGORITHM => &mut r.auth,
            ipsec_attr::KEY_LENGTH => &mut r.key_len,
            ipsec_attr::SA_LIFE_TYPE => {
                life_type = Some(v);
                continue;
            }
            ipsec_attr::SA_LIFE_DURATION => match life_type {
                Some(t) if t == u64::from(ipsec_attr::LIFE_SECONDS) => &mut r.life_s,
                Some(t) if t == u64::from(ipsec_attr::LIFE_KILOBYTES) => &mut r.life_kb,
                _ => {
                    r.problem
                        .get_or_insert("SA_LIFE_DURATION without a known SA_LIFE_TYPE".into());
                    continue;
                }
            },
            k => {
                r.problem
                    .get_or_insert(format!("unsupported attribute {k}"));
                continue;
            }
        };
        if slot.replace(v).is_some() {
            r.problem
                .get_or_insert(format!("attribute {} repeated", a.kind));
        }
    }
    r
}

/// Mode and UDP encapsulation of an ENCAPSULATION_MODE value (absent: tunnel).
fn decode_encap(v: Option<u64>) -> Option<(EncapMode, Option<bool>)> {
    let v = match v {
        None => return Some((EncapMode::Tunnel, None)),
        Some(v) => u16::try_from(v).ok()?,
    };
    Some(match v {
        ipsec_attr::ENCAP_TUNNEL => (EncapMode::Tunnel, None),
        ipsec_attr::ENCAP_TRANSPORT => (EncapMode::Transport, None),
        ipsec_attr::ENCAP_UDP_TUNNEL => (EncapMode::Tunnel, Some(true)),
        ipsec_attr::ENCAP_UDP_TRANSPORT => (EncapMode::Transport, Some(true)),
        ipsec_attr::ENCAP_UDP_TUNNEL_DRAFT => (EncapMode::Tunnel, Some(false)),
        ipsec_attr::ENCAP_UDP_TRANSPORT_DRAFT => (EncapMode::Transport, Some(false)),
        _ => return None,
    })
}

fn encap_label(m: EncapMode, udp: Option<bool>) -> &'static str {
    match (m, udp) {
        (EncapMode::Tunnel, None) => "tunnel",
        (EncapMode::Transport, None) => "transport",
        (EncapMode::Tunnel, Some(_)) => "udp-tunnel",
        (EncapMode::Transport, Some(_)) => "udp-transport",
    }
}

fn ipsec_proto_label(p: IpsecProtocol) -> &'static str {
    match p {
        IpsecProtocol::Esp => "ESP",
        IpsecProtocol::Ah => "AH",
    }
}

/// Our transform, e.g. `ESP AES-128-HMAC_SHA1 tunnel PFS MODP2048 life 60..86400s`.
pub(crate) fn describe_p2(p: IpsecProtocol, t: &IpsecTransform) -> String {
    let mut s = format!("{} ", ipsec_proto_label(p));
    let mut parts: Vec<String> = Vec::new();
    if let Some(c) = t.cipher {
        parts.push(esp_label(c));
    }
    if let Some(i) = t.integ {
        parts.push(integ_label(i).into());
    }
    s.push_str(&parts.join("-"));
    s.push(' ');
    s.push_str(encap_label(t.encap, None));
    if let Some(g) = t.pfs_group {
        s.push_str(&format!(" PFS {}", group_label(g)));
    }
    s.push_str(&format!(" life {}", range_text(&t.lifetime)));
    s
}

/// The typed view of a peer transform, or why it is not usable at all.
struct OfferP2 {
    cipher: Option<EspCipher>,
    integ: Option<IntegAlg>,
    encap: EncapMode,
    udp: Option<bool>,
    group: Option<Group>,
    raw: RawP2,
    desc: String,
}

/// A transform of the peer's phase-2 offer that we cannot use whatever our policy says.
#[derive(Debug, Clone, PartialEq, Eq)]
struct UnusableTransform {
    /// The transform as the log describes it, e.g. "ESP AES-128-HMAC-SHA1 tunnel".
    desc: String,
    why: TransformProblem,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum TransformProblem {
    /// Too long, unknown or repeated: the attribute problem as the parser put it.
    Attribute(String),
    EspTransform(u8),
    AuthAlgorithm,
    EncapsulationMode(u64),
    PfsGroup,
}

impl fmt::Display for UnusableTransform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let desc = &self.desc;
        match &self.why {
            TransformProblem::Attribute(p) => write!(f, "{desc}: {p}"),
            TransformProblem::EspTransform(id) => {
                write!(f, "{desc}: ESP transform {id} not supported")
            }
            TransformProblem::AuthAlgorithm => {
                write!(f, "{desc}: authentication algorithm not supported")
            }
            TransformProblem::EncapsulationMode(m) => {
                write!(f, "{desc}: encapsulation mode {m} not supported")
            }
            TransformProblem::PfsGroup => write!(f, "{desc}: PFS group not supported"),
        }
    }
}

impl std::error::Error for UnusableTransform {}

fn offer_p2(protocol: IpsecProtocol, t: &Transform) -> Result<OfferP2, UnusableTransform> {
    let raw = raw_p2(t);
    let (cipher, cipher_label) = match protocol {
        IpsecProtocol::Esp => match esp_from_wire(t.transform_id, raw.key_len) {
            Some(c) => (Some(c), esp_label(c)),
            None => (None, format!("ESP-transform#{}", t.transform_id)),
        },
        IpsecProtocol::Ah => (None, String::new()),
    };
    let integ = match protocol {
        IpsecProtocol::Esp => raw.auth.and_then(integ_from_ipsec),
        IpsecProtocol::Ah => integ_from_ah(t.transform_id),
    };
    let integ_label_s = match (protocol, integ, raw.auth) {
        (_, Some(i), _) => integ_label(i).to_string(),
        (IpsecProtocol::Ah, None, _) => format!("AH-transform#{}", t.transform_id),
        (IpsecProtocol::Esp, None, Some(a)) => format!("auth#{a}"),
        (IpsecProtocol::Esp, None, None) => String::new(),
    };
    let encap = decode_encap(raw.encap);
    let group = raw.group.and_then(group_from_id);
    let mut desc = format!("{} ", ipsec_proto_label(protocol));
    desc.push_str(
        &[cipher_label.as_str(), integ_label_s.as_str()]
            .iter()
            .filter(|s| !s.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join("-"),
    );
    match encap {
        Some((m, u)) => desc.push_str(&format!(" {}", encap_label(m, u))),
        None => desc.push_str(&format!(" encap#{}", raw.encap.unwrap_or(0))),
    }
    if let Some(g) = raw.group {
        desc.push_str(&format!(" PFS {}", raw_group_label(Some(g))));
    }
    if let Some(l) = raw.life_s {
        desc.push_str(&format!(" life {l}s"));
    }
    if let Some(k) = raw.life_kb {
        desc.push_str(&format!(" {k}KB"));
    }
    let unusable = |why| {
        Err(UnusableTransform {
            desc: desc.clone(),
            why,
        })
    };
    if let Some(p) = &raw.problem {
        return unusable(TransformProblem::Attribute(p.clone()));
    }
    if protocol == IpsecProtocol::Esp && cipher.is_none() {
        return unusable(TransformProblem::EspTransform(t.transform_id));
    }
    if integ.is_none() && (protocol == IpsecProtocol::Ah || raw.auth.is_some()) {
        return unusable(TransformProblem::AuthAlgorithm);
    }
    let Some((encap, udp)) = encap else {
        return unusable(TransformProblem::EncapsulationMode(raw.encap.unwrap_or(0)));
    };
    if raw.group.is_some() && group.is_none() {
        return unusable(TransformProblem::PfsGroup);
    }
    Ok(OfferP2 {
        cipher,
        integ,
        encap,
        udp,
        group,
        raw,
        desc,
    })
}

/// Compare with one of our transforms: (lifetime, cut) or the differences.
fn match_p2(
    o: &OfferP2,
    ours: &IpsecTransform,
    cap: bool,
    range: Option<(u16, u16)>,
) -> Result<(Lifetime, bool), Vec<String>> {
    let mut d = Vec::new();
    let cipher_ok = o.cipher == ours.cipher
        || match (o.cipher, ours.cipher) {
            (Some(EspCipher::AesCbc { key_bits }), Some(EspCipher::AesCbc { .. }))
            | (Some(EspCipher::AesGcm16 { key_bits }), Some(EspCipher::AesGcm16 { .. })) => {
                in_range(key_bits, range)
            }
            _ => false,
        };
    if !cipher_ok {
        let l = |c: Option<EspCipher>| c.map(esp_label).unwrap_or_else(|| "none".into());
        d.push(format!("cipher {} != {}", l(o.cipher), l(ours.cipher)));
    }
    if o.integ != ours.integ {
        let l = |i: Option<IntegAlg>| i.map(integ_label).unwrap_or("none");
        d.push(format!("integrity {} != {}", l(o.integ), l(ours.integ)));
    }
    if o.encap != ours.encap {
        d.push(format!(
            "mode {} != {}",
            encap_label(o.encap, None),
            encap_label(ours.encap, None)
        ));
    }
    if o.group != ours.pfs_group {
        let l = |g: Option<Group>| g.map(group_label).unwrap_or("no PFS");
        d.push(format!("PFS {} != {}", l(o.group), l(ours.pfs_group)));
    }
    let lim = |r: &LifetimeRange| {
        if cap {
            *r
        } else {
            LifetimeRange {
                max: r.default,
                ..*r
            }
        }
    };
    let mut cut = false;
    let mut seconds = ours.lifetime.default;
    match check_life(o.raw.life_s, &lim(&ours.lifetime), "life (s)") {
        Ok((l, c)) if !c || cap => {
            seconds = l;
            cut |= c;
        }
        Ok(_) => d.push(
            LifeRefused::AboveOffered {
                offered: o.raw.life_s.unwrap_or(0),
                unit: "s",
                ours: None,
            }
            .to_string(),
        ),
        Err(e) => d.push(e.to_string()),
    }
    let mut kilobytes = o.raw.life_kb;
    if let Some(kr) = &ours.lifetime_kb {
        match check_life(o.raw.life_kb, &lim(kr), "life (KB)") {
            Ok((l, c)) if !c || cap => {
                kilobytes = Some(l);
                cut |= c;
            }
            Ok(_) => d.push(
                LifeRefused::AboveOffered {
                    offered: o.raw.life_kb.unwrap_or(0),
                    unit: "KB",
                    ours: None,
                }
                .to_string(),
            ),
            Err(e) => d.push(e.to_string()),
        }
    }
    if d.is_empty() {
        Ok((Lifetime { seconds, kilobytes }, cut))
    } else {
        Err(d)
    }
}

fn ipsec_protocol(p: ProtocolId) -> Option<IpsecProtocol> {
    match p {
        ProtocolId::IPSEC_ESP => Some(IpsecProtocol::Esp),
        ProtocolId::IPSEC_AH => Some(IpsecProtocol::Ah),
        _ => None,
    }
}

fn ours_p2(conn: &Connection) -> Vec<String> {
    conn.suites
        .iter()
        .map(|s| {
            let inner: Vec<String> = s
                .protocols
                .iter()
                .flat_map(|p| p.transforms.iter().map(move |t| describe_p2(p.protocol, t)))
                .collect();
            format!("{}: {}", s.name, inner.join(" | "))
        })
        .collect()
}

/// Group consecutive proposals with the same number (a bundle such as AH+ESP).
fn bundles(sa: &SaPayload) -> Vec<&[Proposal]> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=sa.proposals.len() {
        if i == sa.proposals.len() || sa.proposals[i].number != sa.proposals[start].number {
            if i > start {
                out.push(&sa.proposals[start..i]);
            }
            start = i;
        }
    }
    out
}

/// Why one bundle of the peer's proposals (one proposal number) does not fit one suite.
#[derive(Debug, Clone, PartialEq, Eq)]
enum BundleRefused {
    Protocol {
        number: u8,
        protocol: u8,
    },
    NotInSuite {
        number: u8,
        suite: String,
        protocol: IpsecProtocol,
    },
    SpiLength {
        number: u8,
        protocol: IpsecProtocol,
        len: usize,
    },
    /// No transform of a protocol fits: each transform's problem, for the log.
    NoTransform {
        number: u8,
        suite: String,
        problems: Vec<String>,
    },
    /// The suite wants protocols the bundle lacks.
    Incomplete {
        number: u8,
        suite: String,
        missing: Vec<IpsecProtocol>,
    },
    EncapsulationDisagrees {
        number: u8,
    },
    PfsGroupDisagrees {
        number: u8,
    },
}

impl fmt::Display for BundleRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BundleRefused::Protocol { number, protocol } => {
                write!(f, "proposal #{number}: protocol {protocol} not supported")
            }
            BundleRefused::NotInSuite {
                number,
                suite,
                protocol,
            } => write!(
                f,
                "proposal #{number}: suite {suite} has no {}",
                ipsec_proto_label(*protocol)
            ),
            BundleRefused::SpiLength {
                number,
                protocol,
                len,
            } => write!(
                f,
                "proposal #{number}: {} SPI of {len} bytes",
                ipsec_proto_label(*protocol)
            ),
            BundleRefused::NoTransform {
                number,
                suite,
                problems,
            } => write!(f, "proposal #{number} vs {suite}: {}", problems.join("; ")),
            BundleRefused::Incomplete {
                number,
                suite,
                missing,
            } => {
                let missing: Vec<&str> = missing.iter().map(|w| ipsec_proto_label(*w)).collect();
                write!(
                    f,
                    "proposal #{number}: suite {suite} also needs {}",
                    missing.join("+")
                )
            }
            BundleRefused::EncapsulationDisagrees { number } => {
                write!(f, "proposal #{number}: protocols disagree on encapsulation")
            }
            BundleRefused::PfsGroupDisagrees { number } => {
                write!(f, "proposal #{number}: protocols disagree on the PFS group")
            }
        }
    }
}

impl std::error::Error for BundleRefused {}

/// Try one bundle against one suite. `Ok(chosen)` or the reasons.
fn match_bundle(
    bundle: &[Proposal],
    suite: &Suite,
    cap: bool,
    ranges: Ranges<'_>,
) -> Result<ChosenPhase2, BundleRefused> {
    let number = bundle.first().map(|p| p.number).unwrap_or(0);
    let mut want: Vec<IpsecProtocol> = suite.protocols.iter().map(|p| p.protocol).collect();
    let mut chosen = Vec::new();
    let mut problems = Vec::new();
    for p in bundle {
        let Some(proto) = ipsec_protocol(p.protocol) else {
            return Err(BundleRefused::Protocol {
                number,
                protocol: p.protocol.0,
            });
        };
        let Some(ours) = suite.protocols.iter().find(|q| q.protocol == proto) else {
            return Err(BundleRefused::NotInSuite {
                number,
                suite: suite.name.clone(),
                protocol: proto,
            });
        };
        want.retain(|w| *w != proto);
        let Ok(spi) = <[u8; 4]>::try_from(p.spi.as_slice()) else {
            return Err(BundleRefused::SpiLength {
                number,
                protocol: proto,
                len: p.spi.len(),
            });
        };
        let mut found = None;
        for t in &p.transforms {
            let offer = match offer_p2(proto, t) {
                Ok(o) => o,
                Err(e) => {
                    problems.push(e.to_string());
                    continue;
                }
            };
            let mut diffs = Vec::new();
            for o in &ours.transforms {
                let range = if cap { ranges(&o.name) } else { None };
                match match_p2(&offer, o, cap, range) {
                    Ok((life, cut)) => {
                        let chosen = IpsecTransform {
                            cipher: offer.cipher.or(o.cipher),
                            ..o.clone()
                        };
                        found = Some((t.number, chosen, life, cut, offer.udp, offer.encap));
                        break;
                    }
                    Err(d) => diffs.push(d),
                }
            }
            if found.is_some() {
                break;
            }
            problems.push(format!("{}: {}", offer.desc, best_reason(diffs)));
        }
        match found {
            Some(f) => chosen.push((proto, spi, f)),
            None => {
                return Err(BundleRefused::NoTransform {
                    number,
                    suite: suite.name.clone(),
                    problems,
                })
            }
        }
    }
    if !want.is_empty() {
        return Err(BundleRefused::Incomplete {
            number,
            suite: suite.name.clone(),
            missing: want,
        });
    }
    // All protocols of one SA bundle share PFS, mode and UDP encapsulation.
    let first = &chosen[0].2;
    if chosen
        .iter()
        .any(|c| c.2 .4 != first.4 || c.2 .5 != first.5)
    {
        return Err(BundleRefused::EncapsulationDisagrees { number });
    }
    let groups: Vec<Group> = chosen.iter().filter_map(|c| c.2 .1.pfs_group).collect();
    if groups.windows(2).any(|w| w[0] != w[1]) {
        return Err(BundleRefused::PfsGroupDisagrees { number });
    }
    let seconds = chosen.iter().map(|c| c.2 .2.seconds).min().unwrap_or(0);
    let kilobytes = chosen.iter().filter_map(|c| c.2 .2.kilobytes).min();
    Ok(ChosenPhase2 {
        proposal_number: number,
        lifetime: Lifetime { seconds, kilobytes },
        pfs_group: groups.first().copied(),
        encap: first.5,
        udp_encap: first.4,
        responder_lifetime: chosen.iter().any(|c| c.2 .3),
        protocols: chosen
            .into_iter()
            .map(
                |(protocol, peer_spi, (transform_number, transform, ..))| ChosenProtocol {
                    protocol,
                    transform_number,
                    transform,
                    peer_spi,
                },
            )
            .collect(),
    })
}

fn describe_offer_p2(sa: &SaPayload) -> Vec<String> {
    let mut out = Vec::new();
    for p in &sa.proposals {
        let proto = ipsec_protocol(p.protocol);
        for t in &p.transforms {
            out.push(match proto {
                Some(pr) => match offer_p2(pr, t) {
                    Ok(o) => format!("#{} {}", p.number, o.desc),
                    Err(e) => format!("#{} {}", p.number, e.desc),
                },
                None => format!("#{} protocol {}", p.number, p.protocol.0),
            });
        }
    }
    out
}

/// Responder: the first of the peer's proposals (whole bundles: every protocol of one
/// proposal number) that one of our suites accepts, with the peer's SPIs. UDP encapsulated
/// modes match tunnel/transport and are recorded in `udp_encap`.
pub fn choose_phase2(offer: &SaPayload, conn: &Connection) -> Result<ChosenPhase2, Mismatch> {
    choose_phase2_in(offer, conn, &|_| None)
}

fn choose_phase2_in(
    offer: &SaPayload,
    conn: &Connection,
    ranges: Ranges<'_>,
) -> Result<ChosenPhase2, Mismatch> {
    let theirs = describe_offer_p2(offer);
    let mut reasons = Vec::new();
    for b in bundles(offer) {
        for s in &conn.suites {
            match match_bundle(b, s, true, ranges) {
                Ok(c) => return Ok(c),
                Err(e) => reasons.push(e.to_string()),
            }
        }
    }
    if offer.proposals.is_empty() {
        reasons.push("the SA has no proposal".into());
    }
    Err(Mismatch {
        ours: ours_p2(conn),
        theirs,
        reasons,
    })
}

/// Initiator: the responder must return one proposal number (one Proposal per protocol) with
/// exactly one transform each, equal to what we offered under that number for that suite,
/// lifetimes no longer than offered. `peer_spi` is the responder's SPI.
pub fn accept_phase2_reply(reply: &SaPayload, conn: &Connection) -> Result<ChosenPhase2, Mismatch> {
    let theirs = describe_offer_p2(reply);
    let mut reasons = Vec::new();
    let bs = bundles(reply);
    if bs.len() != 1 || reply.proposals.iter().any(|p| p.transforms.len() != 1) {
        reasons.push(format!(
            "the reply must hold one proposal number with one transform per protocol, it holds {} numbers",
            bs.len()
        ));
        return Err(Mismatch {
            ours: ours_p2(conn),
            theirs,
            reasons,
        });
    }
    let b = bs[0];
    let number = usize::from(b[0].number);
    // The responder keeps our proposal number (RFC 2408 4.2): try that suite first.
    let order = conn
        .suites
        .iter()
        .enumerate()
        .filter(|(i, _)| i + 1 == number)
        .chain(
            conn.suites
                .iter()
                .enumerate()
                .filter(|(i, _)| i + 1 != number),
        );
    for (_, s) in order {
        match match_bundle(b, s, false, &|_| None) {
            Ok(c) => return Ok(c),
            Err(e) => reasons.push(e.to_string()),
        }
    }
    Err(Mismatch {
        ours: ours_p2(conn),
        theirs,
        reasons,
    })
}

/// The responder's reply SA of phase 1: the chosen proposal with only the chosen transform,
/// copied as the peer sent it (RFC 2408 4.2).
pub fn phase1_reply_sa(offer: &SaPayload, chosen: &ChosenPhase1) -> Option<SaPayload> {
    let p = offer
        .proposals
        .iter()
        .find(|p| p.number == chosen.proposal_number)?;
    let t = p
        .transforms
        .iter()
        .find(|t| t.number == chosen.transform_number)?;
    Some(SaPayload {
        doi: offer.doi,
        situation: offer.situation,
        proposals: vec![Proposal {
            number: p.number,
            protocol: p.protocol,
            spi: p.spi.clone(),
            transforms: vec![t.clone()],
        }],
    })
}

/// The responder's reply SA of Quick Mode: the chosen proposal's protocols, each with only
/// the chosen transform as the peer sent it and our inbound SPI `spi(protocol)`. A cut
/// lifetime is not rewritten here: the RESPONDER-LIFETIME notify carries it.
pub fn phase2_reply_sa(
    offer: &SaPayload,
    chosen: &ChosenPhase2,
    mut spi: impl FnMut(IpsecProtocol) -> [u8; 4],
) -> Option<SaPayload> {
    let mut proposals = Vec::new();
    for c in &chosen.protocols {
        let p = offer.proposals.iter().find(|p| {
            p.number == chosen.proposal_number && p.protocol == wire_protocol(c.protocol)
        })?;
        let t = p
            .transforms
            .iter()
            .find(|t| t.number == c.transform_number)?;
        proposals.push(Proposal {
            number: p.number,
            protocol: p.protocol,
            spi: spi(c.protocol).to_vec(),
            transforms: vec![t.clone()],
        });
    }
    Some(SaPayload {
        doi: offer.doi,
        situation: offer.situation,
        proposals,
    })
}

impl Policy {
    /// [`choose_phase1`] with isakmpd's key-length ranges: an AES transform whose
    /// `KEY_LENGTH` is `X,Y:Z` accepts any AES key length in `Y..Z`; the chosen transform
    /// carries the peer's key length.
    pub fn choose_phase1_for(
        &self,
        peer: &Peer,
        offer: &SaPayload,
    ) -> Result<ChosenPhase1, Mismatch> {
        choose_phase1_in(offer, &peer.transforms, &|name| self.key_length_range(name))
    }

    /// [`choose_phase2`] with isakmpd's key-length ranges (see [`Policy::choose_phase1_for`]).
    pub fn choose_phase2_for(
        &self,
        conn: &Connection,
        offer: &SaPayload,
    ) -> Result<ChosenPhase2, Mismatch> {
        choose_phase2_in(offer, conn, &|name| self.key_length_range(name))
    }

    /// The accepted AES key-length range of a transform section, if it is a range.
    pub fn key_length_range(&self, transform: &str) -> Option<(u16, u16)> {
        self.key_lengths
            .get(&transform.to_ascii_lowercase())
            .copied()
    }
}
