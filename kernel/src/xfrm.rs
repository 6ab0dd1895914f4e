//! The XFRM handle: one NETLINK_XFRM socket driven by a tokio task (xfrmnetlink's
//! connection), and the operations [`crate::XfrmRequest`]s need.

use crate::alg::{self, KernelCipher};
use crate::error::{KernelError, Op};
use crate::types::{Direction, EncapMode, EspCipher, IpsecProtocol, PolicySpec, SaSpec, Selector};
use futures::TryStreamExt;
use netlink_packet_xfrm::{
    Address, UserTemplate, UDP_ENCAP_ESPINUDP, XFRM_MODE_TRANSPORT, XFRM_MODE_TUNNEL,
    XFRM_POLICY_FWD, XFRM_POLICY_IN, XFRM_POLICY_OUT,
};
use std::net::IpAddr;
use std::ops::RangeInclusive;
use zeroize::Zeroizing;

/// The reqids this daemon uses. Every SA and policy we install carries a reqid in this range
/// (the daemon hands out `0x4001..` per connection), and larval SAs from `alloc_spi` carry
/// [`OWNED_REQID_BASE`]. `flush_ours` deletes what lies in this range and nothing else:
/// SAs and policies of other software (other reqids, or no template) are never touched.
pub const OWNED_REQIDS: RangeInclusive<u32> = 0x4000..=0x7fff;
/// Reqid of the larval SAs `alloc_spi` makes when no connection reqid is given.
pub const OWNED_REQID_BASE: u32 = 0x4000;

/// SPIs we ask for: as pluto, never 0x100-0xFFF (reserved for manual keying by convention)
/// nor below (reserved by RFC 4303).
pub const SPI_RANGE: RangeInclusive<u32> = 0x1000..=0xffff_ffff;

/// Anti-replay window of the SAs we install (packets; no ESN).
pub const REPLAY_WINDOW: u32 = 32;

/// Soft limits are this percentage of the hard ones: the kernel then sends a soft EXPIRE
/// well before the SA dies. (The daemon rekeys on its own timers; the soft expire is the
/// kernel's reminder, e.g. for byte limits the daemon cannot see.)
pub const SOFT_PERCENT: u64 = 90;

/// Policy priority base; more specific selectors get a lower number (higher priority), as
/// pluto does, so a host-to-host policy beats a subnet one.
pub const POLICY_PRIORITY_BASE: u32 = 0x1000;

/// Direction of a policy, as XFRM sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyDir {
    Out,
    In,
    Fwd,
}

impl PolicyDir {
    fn xfrm(self) -> u8 {
        match self {
            PolicyDir::Out => XFRM_POLICY_OUT,
            PolicyDir::In => XFRM_POLICY_IN,
            PolicyDir::Fwd => XFRM_POLICY_FWD,
        }
    }

    fn name(self) -> &'static str {
        match self {
            PolicyDir::Out => "out",
            PolicyDir::In => "in",
            PolicyDir::Fwd => "fwd",
        }
    }

    /// The directions a connection needs: out and in, plus fwd in tunnel mode (so traffic
    /// for a subnet behind us is let through after decapsulation).
    pub fn for_mode(mode: EncapMode) -> &'static [PolicyDir] {
        match mode {
            EncapMode::Tunnel => &[PolicyDir::Out, PolicyDir::In, PolicyDir::Fwd],
            EncapMode::Transport => &[PolicyDir::Out, PolicyDir::In],
        }
    }
}

/// One of our SAs as the kernel holds it, with what has crossed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelSa {
    pub protocol: IpsecProtocol,
    pub spi: u32,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub reqid: u32,
    pub bytes: u64,
    pub packets: u64,
}

/// What `flush_ours` removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Flushed {
    pub sas: usize,
    pub policies: usize,
}

pub(crate) fn proto_number(p: IpsecProtocol) -> u8 {
    match p {
        IpsecProtocol::Esp => libc::IPPROTO_ESP as u8,
        IpsecProtocol::Ah => libc::IPPROTO_AH as u8,
    }
}

pub(crate) fn proto_name(p: IpsecProtocol) -> &'static str {
    match p {
        IpsecProtocol::Esp => "ESP",
        IpsecProtocol::Ah => "AH",
    }
}

fn mode_number(m: EncapMode) -> u8 {
    match m {
        EncapMode::Tunnel => XFRM_MODE_TUNNEL,
        EncapMode::Transport => XFRM_MODE_TRANSPORT,
    }
}

/// `ESP SA 0x1234abcd 192.0.2.1 -> 192.0.2.2`: how errors and logs name an SA. Callers
/// with their own protocol type map it onto ours first, so the name never depends on how
/// another crate spells its variants.
pub fn sa_name(protocol: IpsecProtocol, spi: u32, src: IpAddr, dst: IpAddr) -> String {
    format!("{} SA 0x{spi:08x} {src} -> {dst}", proto_name(protocol))
}

fn selector_text(s: &Selector) -> String {
    let mut t = match s.range_end {
        Some(end) => format!("{}-{end}", s.address),
        None => format!("{}/{}", s.address, s.prefix_len),
    };
    if s.protocol != 0 {
        t.push_str(&format!(" proto {}", s.protocol));
    }
    if s.port != 0 {
        t.push_str(&format!(" port {}", s.port));
    }
    t
}

fn policy_name(spec: &PolicySpec, dir: PolicyDir) -> String {
    format!(
        "{} policy {} -> {} (connection {}, reqid {})",
        dir.name(),
        selector_text(&spec.local),
        selector_text(&spec.remote),
        spec.connection,
        spec.reqid
    )
}

/// The reqids of a policy's templates.
fn template_reqids(nlas: &[netlink_packet_xfrm::XfrmAttrs]) -> Vec<u32> {
    nlas.iter()
        .filter_map(|a| match a {
            netlink_packet_xfrm::XfrmAttrs::Template(ts) => Some(ts.iter().map(|t| t.reqid)),
            _ => None,
        })
        .flatten()
        .collect()
}

/// The (address, prefix length) XFRM can express for `s`: a subnet, or a range that is
/// exactly one CIDR block. Other ranges would need several policies and are refused.
pub fn selector_prefix(s: &Selector) -> Option<(IpAddr, u8)> {
    let max = if s.address.is_ipv4() { 32 } else { 128 };
    match s.range_end {
        None if s.prefix_len <= max => Some((s.address, s.prefix_len)),
        None => None,
        Some(end) => {
            let (start, end, bits) = range_bounds(s.address, end)?;
            let span = end - start;
            // span + 1 must be a power of two and start aligned to it.
            let size = span.checked_add(1);
            let host_bits = match size {
                Some(n) if n.is_power_of_two() => n.trailing_zeros(),
                None if bits == 128 => 128, // the whole IPv6 space
                _ => return None,
            };
            let aligned = host_bits >= 128 || start & ((1u128 << host_bits) - 1) == 0;
            if !aligned || host_bits > bits {
                return None;
            }
            Some((s.address, (bits - host_bits) as u8))
        }
    }
}

/// The CIDR blocks that make up `s` exactly: one for a subnet, the fewest for a range;
/// `None` for a malformed selector or a range needing more than 32 blocks.
pub fn selector_prefixes(s: &Selector) -> Option<Vec<(IpAddr, u8)>> {
    if let Some(p) = selector_prefix(s) {
        return Some(vec![p]);
    }
    let (mut start, end, bits) = range_bounds(s.address, s.range_end?)?;
    let mut out = Vec::new();
    loop {
        // The largest block aligned at `start` that does not pass `end`.
        let mut host = start.trailing_zeros().min(bits);
        while host > 0 && (host >= 128 || start + ((1u128 << host) - 1) > end) {
            host -= 1;
        }
        let addr = if bits == 32 {
            IpAddr::V4(std::net::Ipv4Addr::from(start as u32))
        } else {
            IpAddr::V6(std::net::Ipv6Addr::from(start))
        };
        out.push((addr, (bits - host) as u8));
        if out.len() > MAX_RANGE_PREFIXES {
            return None;
        }
        let last = start + ((1u128 << host) - 1);
        if last >= end {
            return Some(out);
        }
        start = last + 1;
    }
}

/// A range's first and last address as numbers, and the family's address width in bits;
/// `None` when the ends are of different families or in the wrong order.
fn range_bounds(first: IpAddr, last: IpAddr) -> Option<(u128, u128, u32)> {
    let (start, end, bits) = match (first, last) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (u128::from(u32::from(a)), u128::from(u32::from(b)), 32),
        (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), 128),
        _ => return None,
    };
    (start <= end).then_some((start, end, bits))
}

fn policy_priority(local_prefix: u8, remote_prefix: u8, proto: u8, ports: bool) -> u32 {
    POLICY_PRIORITY_BASE
        .saturating_sub(u32::from(local_prefix) + u32::from(remote_prefix))
        .saturating_sub(if proto != 0 { 2 } else { 0 })
        .saturating_sub(if ports { 1 } else { 0 })
}

/// The XFRM netlink handle. Create it inside a tokio runtime: the socket is driven by a
/// task spawned on it.
#[derive(Clone, Debug)]
pub struct Xfrm {
    handle: xfrmnetlink::Handle,
}

impl Xfrm {
    /// Opens the NETLINK_XFRM socket in the current network namespace.
    pub fn open() -> Result<Xfrm, KernelError> {
        crate::error::need_runtime("XFRM netlink socket")?;
        let (conn, handle, _messages) = xfrmnetlink::new_connection()
            .map_err(|e| KernelError::other(Op::Open, "XFRM netlink socket", e.to_string()))?;
        tokio::spawn(conn);
        Ok(Xfrm { handle })
    }

    /// Reserves an SPI for an inbound SA of `protocol` from `src` (the peer) to `dst` (us).
    /// The kernel keeps a larval SA with that SPI until `add_sa` fills it in (or it times out).
    pub async fn alloc_spi(
        &self,
        protocol: IpsecProtocol,
        src: IpAddr,
        dst: IpAddr,
        reqid: Option<u32>,
    ) -> Result<u32, KernelError> {
        let subject = format!("{} SA {src} -> {dst}", proto_name(protocol));
        let mut stream = self
            .handle
            .state()
            .alloc_spi(src, dst)
            .protocol(proto_number(protocol))
            .spi_range(*SPI_RANGE.start(), *SPI_RANGE.end())
            .reqid(reqid.unwrap_or(OWNED_REQID_BASE))
            .execute();
        match stream.try_next().await {
            Ok(Some(msg)) => {
                let spi = msg.user_sa_info.id.spi;
                if SPI_RANGE.contains(&spi) {
                    Ok(spi)
                } else {
                    Err(KernelError::other(
                        Op::AllocSpi,
                        subject,
                        format!("kernel gave SPI 0x{spi:08x} outside the range asked for"),
                    ))
                }
            }
            Ok(None) => Err(KernelError::other(Op::AllocSpi, subject, "no answer")),
            Err(e) => Err(KernelError::from_netlink(Op::AllocSpi, subject, e)),
        }
    }

    /// Installs one SA. An inbound SA replaces the larval SA of its allocated SPI
    /// (XFRM_MSG_UPDSA, as pluto); an outbound one is added (XFRM_MSG_NEWSA).
    pub async fn add_sa(&self, spec: &SaSpec) -> Result<(), KernelError> {
        let subject = sa_name(spec.protocol, spec.spi, spec.src, spec.dst);
        let inbound = spec.direction == Direction::Inbound;
        match self.modify_sa(spec, &subject, inbound).await {
            // No larval SA (the SPI was not allocated here, or it timed out): add instead.
            Err(e) if inbound && e.is_not_found() => self.modify_sa(spec, &subject, false).await,
            r => r,
        }
    }

    async fn modify_sa(
        &self,
        spec: &SaSpec,
        subject: &str,
        update: bool,
    ) -> Result<(), KernelError> {
        let req = self.sa_request(spec, subject, update)?;
        req.execute().await.map_err(|e| {
            let mut e = KernelError::from_netlink(Op::AddSa, subject, e);
            if e.errno == Some(libc::ENOSYS) || e.errno == Some(libc::ENOENT) {
                // Name the algorithms the kernel may lack.
                e.detail = algorithms(spec);
            }
            e
        })
    }

    /// The NEWSA/UPDSA request for `spec`, checked and translated, not yet sent.
    fn sa_request(
        &self,
        spec: &SaSpec,
        subject: &str,
        update: bool,
    ) -> Result<xfrmnetlink::StateModifyRequest, KernelError> {
        if !OWNED_REQIDS.contains(&spec.reqid) {
            return Err(KernelError::other(
                Op::AddSa,
                subject,
                format!("reqid {:#x} outside our range", spec.reqid),
            ));
        }
        let state = self.handle.state();
        let mut req = if update {
            state.update(spec.src, spec.dst)
        } else {
            state.add(spec.src, spec.dst)
        };
        req = req
            .protocol(proto_number(spec.protocol))
            .spi(spec.spi)
            .mode(mode_number(spec.mode))
            .reqid(spec.reqid)
            .replay_window(REPLAY_WINDOW, 0, 0, 0, 0);
        let bad = |detail: String| KernelError::other(Op::AddSa, subject, detail);
        let nl = |e: xfrmnetlink::Error| KernelError::from_netlink(Op::AddSa, subject, e);

        match (spec.protocol, spec.cipher) {
            (IpsecProtocol::Esp, Some(c)) => {
                let kc = alg::cipher(c).ok_or_else(|| bad(format!("unsupported cipher {c:?}")))?;
                let key = Zeroizing::new(spec.enc_key.as_bytes().to_vec());
                match kc {
                    KernelCipher::Crypt { name, key_len } => {
                        if key.len() != key_len {
                            return Err(bad(format!(
                                "{name} needs a {key_len}-byte key, got {}",
                                key.len()
                            )));
                        }
                        req = req.encryption(name, &key).map_err(nl)?;
                    }
                    KernelCipher::Aead {
                        name,
                        key_len,
                        icv_bits,
                    } => {
                        if key.len() != key_len {
                            return Err(bad(format!(
                                "{name} needs a {key_len}-byte key with salt, got {}",
                                key.len()
                            )));
                        }
                        if spec.integ.is_some() {
                            return Err(bad(format!("{name} takes no integrity algorithm")));
                        }
                        req = req.encryption_aead(name, &key, icv_bits).map_err(nl)?;
                    }
                }
            }
            (IpsecProtocol::Esp, None) => return Err(bad("ESP without a cipher".into())),
            (IpsecProtocol::Ah, Some(_)) => return Err(bad("AH with a cipher".into())),
            (IpsecProtocol::Ah, None) => {}
        }
        match spec.integ {
            Some(i) => {
                let ka = alg::auth(i);
                let key = Zeroizing::new(spec.auth_key.as_bytes().to_vec());
                if key.len() != ka.key_len {
                    return Err(bad(format!(
                        "{} needs a {}-byte key, got {}",
                        ka.name,
                        ka.key_len,
                        key.len()
                    )));
                }
                req = req
                    .authentication_trunc(ka.name, &key, ka.trunc_bits)
                    .map_err(nl)?;
            }
            None if spec.protocol == IpsecProtocol::Ah => {
                return Err(bad("AH without an integrity algorithm".into()))
            }
            None if !matches!(spec.cipher, Some(EspCipher::AesGcm16 { .. })) => {
                return Err(bad(
                    "ESP without integrity needs a combined-mode cipher".into()
                ))
            }
            None => {}
        }

        let (soft_s, hard_s) = soft_hard(spec.lifetime.seconds);
        req = req.time_limit(soft_s, hard_s);
        if let Some(kb) = spec.lifetime.kilobytes {
            let (soft_b, hard_b) = soft_hard(kb.saturating_mul(1024));
            req = req.byte_limit(soft_b, hard_b);
        }

        if spec.mode == EncapMode::Transport {
            // Transport SAs carry the traffic selector (as strongSwan does); tunnel SAs are
            // bound by their policies' templates and reqid.
            let (local, remote) =
                match (selector_prefix(&spec.local), selector_prefix(&spec.remote)) {
                    (Some(l), Some(r)) => (l, r),
                    _ => return Err(bad("selector range XFRM cannot express".into())),
                };
            let ((s, sp, sport), (d, dp, dport)) = if spec.direction == Direction::Outbound {
                (
                    (local.0, local.1, spec.local.port),
                    (remote.0, remote.1, spec.remote.port),
                )
            } else {
                (
                    (remote.0, remote.1, spec.remote.port),
                    (local.0, local.1, spec.local.port),
                )
            };
            req = req.selector_addresses(s, sp, d, dp);
            let proto = if spec.local.protocol != 0 {
                spec.local.protocol
            } else {
                spec.remote.protocol
            };
            if proto != 0 {
                req = req.selector_protocol(proto);
            }
            if sport != 0 {
                req = req.selector_protocol_src_port(sport);
            }
            if dport != 0 {
                req = req.selector_protocol_dst_port(dport);
            }
        }

        if let Some((sport, dport)) = spec.udp_encap {
            if spec.protocol != IpsecProtocol::Esp {
                return Err(bad("UDP encapsulation of AH".into()));
            }
            let unspecified = match spec.src {
                IpAddr::V4(_) => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
                IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
            };
            req = req.encapsulation(UDP_ENCAP_ESPINUDP, sport, dport, unspecified);
        }

        Ok(req)
    }

    /// Deletes one SA (`src` is the SA's outer source address).
    pub async fn delete_sa(
        &self,
        protocol: IpsecProtocol,
        spi: u32,
        src: IpAddr,
        dst: IpAddr,
    ) -> Result<(), KernelError> {
        let subject = sa_name(protocol, spi, src, dst);
        // Only an SA of ours: another program's SA with the same SPI and destination stays.
        let found: Vec<_> = self
            .handle
            .state()
            .get(src, dst)
            .protocol(proto_number(protocol))
            .spi(spi)
            .execute()
            .try_collect()
            .await
            .map_err(|e| KernelError::from_netlink(Op::DeleteSa, subject.clone(), e))?;
        if let Some(sa) = found.first() {
            let reqid = sa.user_sa_info.reqid;
            if !OWNED_REQIDS.contains(&reqid) {
                return Err(KernelError::other(
                    Op::DeleteSa,
                    subject,
                    format!("not ours (reqid {reqid:#x})"),
                ));
            }
        }
        self.handle
            .state()
            .delete(src, dst)
            .protocol(proto_number(protocol))
            .spi(spi)
            .execute()
            .await
            .map_err(|e| KernelError::from_netlink(Op::DeleteSa, subject, e))
    }

    /// Installs the policy of `spec` in one direction.
    pub async fn add_policy(&self, spec: &PolicySpec, dir: PolicyDir) -> Result<(), KernelError> {
        let subject = policy_name(spec, dir);
        let bad = |detail: &str| KernelError::other(Op::AddPolicy, subject.clone(), detail);
        if spec.protocols.is_empty() {
            return Err(bad("no IPsec protocol"));
        }
        if !OWNED_REQIDS.contains(&spec.reqid) {
            return Err(bad("reqid outside our range"));
        }
        let sels = PolicySelector::all(spec, dir)
            .ok_or_else(|| bad("selector range XFRM cannot express"))?;
        for (i, sel) in sels.iter().enumerate() {
            if let Err(e) = self.add_one_policy(spec, dir, sel).await {
                for done in &sels[..i] {
                    let _ = self
                        .delete_one_policy(dir, done, spec.reqid, &subject)
                        .await;
                }
                return Err(KernelError::from_netlink(Op::AddPolicy, subject, e));
            }
        }
        Ok(())
    }

    async fn add_one_policy(
        &self,
        spec: &PolicySpec,
        dir: PolicyDir,
        sel: &PolicySelector,
    ) -> Result<(), xfrmnetlink::Error> {
        let (tsrc, tdst) = match dir {
            PolicyDir::Out => (spec.local_addr, spec.remote_addr),
            PolicyDir::In | PolicyDir::Fwd => (spec.remote_addr, spec.local_addr),
        };
        let mut req = self
            .handle
            .policy()
            .add(sel.src.0, sel.src.1, sel.dst.0, sel.dst.1)
            .direction(dir.xfrm())
            .priority(sel.priority);
        if sel.proto != 0 {
            req = req.selector_protocol(sel.proto);
        }
        if sel.sport != 0 {
            req = req.selector_protocol_src_port(sel.sport);
        }
        if sel.dport != 0 {
            req = req.selector_protocol_dst_port(sel.dport);
        }
        for t in templates(spec, tsrc, tdst) {
            req = req.add_template(t);
        }
        req.execute().await
    }

    /// Deletes the one policy with selector `sel` in direction `dir`, if it is ours: the
    /// kernel finds policies by selector alone, so another program's policy with the same
    /// selector (at another priority) could otherwise be the one removed. Looked up first,
    /// then deleted by its index.
    async fn delete_one_policy(
        &self,
        dir: PolicyDir,
        sel: &PolicySelector,
        reqid: u32,
        subject: &str,
    ) -> Result<(), KernelError> {
        let mut get = self
            .handle
            .policy()
            .get(sel.src.0, sel.src.1, sel.dst.0, sel.dst.1)
            .direction(dir.xfrm());
        if sel.proto != 0 {
            get = get.selector_protocol(sel.proto);
        }
        if sel.sport != 0 {
            get = get.selector_protocol_src_port(sel.sport);
        }
        if sel.dport != 0 {
            get = get.selector_protocol_dst_port(sel.dport);
        }
        let nl = |e| KernelError::from_netlink(Op::DeletePolicy, subject, e);
        let found: Vec<_> = get.execute().try_collect().await.map_err(nl)?;
        let Some(p) = found.first() else {
            return Err(KernelError::errno(Op::DeletePolicy, subject, libc::ENOENT));
        };
        let reqids = template_reqids(&p.nlas);
        if reqids.is_empty() || reqids.iter().any(|r| *r != reqid) {
            return Err(KernelError::other(
                Op::DeletePolicy,
                subject,
                format!("not ours (templates with reqids {reqids:x?})"),
            ));
        }
        self.handle
            .policy()
            .delete_index(p.user_policy_info.index)
            .direction(dir.xfrm())
            .execute()
            .await
            .map_err(nl)
    }

    /// Installs every direction `spec` needs (out, in, and fwd in tunnel mode). On failure
    /// the directions already installed are removed again.
    pub async fn add_policies(&self, spec: &PolicySpec) -> Result<(), KernelError> {
        let dirs = PolicyDir::for_mode(spec.mode);
        for (i, dir) in dirs.iter().enumerate() {
            if let Err(e) = self.add_policy(spec, *dir).await {
                for done in &dirs[..i] {
                    let _ = self.delete_policy(spec, *done).await;
                }
                return Err(e);
            }
        }
        Ok(())
    }

    /// Deletes the policy of `spec` in one direction (every policy, when a selector range
    /// needed several). ENOENT only when none was there.
    pub async fn delete_policy(
        &self,
        spec: &PolicySpec,
        dir: PolicyDir,
    ) -> Result<(), KernelError> {
        let subject = policy_name(spec, dir);
        let sels = PolicySelector::all(spec, dir).ok_or_else(|| {
            KernelError::other(
                Op::DeletePolicy,
                subject.clone(),
                "selector range XFRM cannot express",
            )
        })?;
        let mut deleted = 0;
        let mut not_found = None;
        for sel in &sels {
            match self.delete_one_policy(dir, sel, spec.reqid, &subject).await {
                Ok(()) => deleted += 1,
                Err(e) => {
                    if !e.is_not_found() {
                        return Err(e);
                    }
                    not_found = Some(e);
                }
            }
        }
        match not_found {
            Some(e) if deleted == 0 => Err(e),
            _ => Ok(()),
        }
    }

    /// Deletes every direction of `spec`'s policy; a direction already gone is no error.
    pub async fn delete_policies(&self, spec: &PolicySpec) -> Result<(), KernelError> {
        let mut first_err = None;
        for dir in PolicyDir::for_mode(spec.mode) {
            match self.delete_policy(spec, *dir).await {
                Err(e) if !e.is_not_found() => {
                    first_err.get_or_insert(e);
                }
                _ => {}
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Removes every SA and policy of ours left from an earlier run: those whose reqid (for
    /// policies: every template's reqid) lies in [`OWNED_REQIDS`]. Nothing else is touched.
    pub async fn flush_ours(&self) -> Result<Flushed, KernelError> {
        let mut flushed = Flushed::default();

        let policies: Vec<_> = self
            .handle
            .policy()
            .get_dump()
            .execute()
            .try_collect()
            .await
            .map_err(|e| KernelError::from_netlink(Op::Dump, "XFRM policies", e))?;
        for p in policies {
            let reqids = template_reqids(&p.nlas);
            if reqids.is_empty() || !reqids.iter().all(|r| OWNED_REQIDS.contains(r)) {
                continue;
            }
            let index = p.user_policy_info.index;
            // The kernel finds a policy by index only together with its direction.
            let dir = p.user_policy_info.direction;
            match self
                .handle
                .policy()
                .delete_index(index)
                .direction(dir)
                .execute()
                .await
            {
                Ok(()) => flushed.policies += 1,
                Err(e) => {
                    let e = KernelError::from_netlink(
                        Op::DeletePolicy,
                        format!("policy index {index}"),
                        e,
                    );
                    if !e.is_not_found() {
                        return Err(e);
                    }
                }
            }
        }

        for sa in self.our_sas().await? {
            match self.delete_sa(sa.protocol, sa.spi, sa.src, sa.dst).await {
                Ok(()) => flushed.sas += 1,
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(flushed)
    }

    /// Every SA of ours (reqid in [`OWNED_REQIDS`]) with its traffic counters, larval SAs
    /// included, in the kernel's order.
    pub async fn our_sas(&self) -> Result<Vec<KernelSa>, KernelError> {
        let sas: Vec<_> = self
            .handle
            .state()
            .get_dump()
            .execute()
            .try_collect()
            .await
            .map_err(|e| KernelError::from_netlink(Op::Dump, "XFRM SAs", e))?;
        let mut out = Vec::new();
        for sa in sas {
            let info = &sa.user_sa_info;
            if !OWNED_REQIDS.contains(&info.reqid) {
                continue;
            }
            let protocol = if info.id.proto == libc::IPPROTO_AH as u8 {
                IpsecProtocol::Ah
            } else if info.id.proto == libc::IPPROTO_ESP as u8 {
                IpsecProtocol::Esp
            } else {
                continue;
            };
            let (Some(src), Some(dst)) = (
                addr(&info.saddr, info.family),
                addr(&info.id.daddr, info.family),
            ) else {
                continue;
            };
            out.push(KernelSa {
                protocol,
                spi: info.id.spi,
                src,
                dst,
                reqid: info.reqid,
                bytes: info.lifetime_cur.bytes,
                packets: info.lifetime_cur.packets,
            });
        }
        Ok(out)
    }
}

/// The kernel names of an SA's algorithms, e.g. `cbc(aes) hmac(sha256)`.
fn algorithms(spec: &SaSpec) -> String {
    let mut names = Vec::new();
    if let Some(c) = spec.cipher.and_then(alg::cipher) {
        names.push(match c {
            KernelCipher::Crypt { name, .. } | KernelCipher::Aead { name, .. } => name,
        });
    }
    if let Some(i) = spec.integ {
        names.push(alg::auth(i).name);
    }
    names.join(" ")
}

fn addr(a: &Address, family: u16) -> Option<IpAddr> {
    match i32::from(family) {
        libc::AF_INET => Some(IpAddr::V4(a.to_ipv4())),
        libc::AF_INET6 => Some(IpAddr::V6(a.to_ipv6())),
        _ => None,
    }
}

fn soft_hard(hard: u64) -> (u64, u64) {
    if hard == 0 {
        // 0 = no limit; the caller does not set byte limits then.
        return (0, 0);
    }
    (
        hard / 100 * SOFT_PERCENT + hard % 100 * SOFT_PERCENT / 100,
        hard,
    )
}

/// The selector of one direction's policy.
struct PolicySelector {
    src: (IpAddr, u8),
    dst: (IpAddr, u8),
    proto: u8,
    sport: u16,
    dport: u16,
    priority: u32,
}

/// At most this many prefixes per side (and their product in all) for a range selector.
const MAX_RANGE_PREFIXES: usize = 32;
const MAX_RANGE_POLICIES: usize = 64;

impl PolicySelector {
    /// One selector per (local prefix, remote prefix): address ranges that are not one
    /// CIDR block become several policies.
    fn all(spec: &PolicySpec, dir: PolicyDir) -> Option<Vec<PolicySelector>> {
        let locals = selector_prefixes(&spec.local)?;
        let remotes = selector_prefixes(&spec.remote)?;
        if locals.len() * remotes.len() > MAX_RANGE_POLICIES {
            return None;
        }
        let mut all = Vec::new();
        for l in &locals {
            for r in &remotes {
                all.push(PolicySelector::new(spec, dir, *l, *r));
            }
        }
        Some(all)
    }

    fn new(
        spec: &PolicySpec,
        dir: PolicyDir,
        local: (IpAddr, u8),
        remote: (IpAddr, u8),
    ) -> PolicySelector {
        let proto = if spec.local.protocol != 0 {
            spec.local.protocol
        } else {
            spec.remote.protocol
        };
        let (src, dst, sport, dport) = match dir {
            PolicyDir::Out => (local, remote, spec.local.port, spec.remote.port),
            PolicyDir::In | PolicyDir::Fwd => (remote, local, spec.remote.port, spec.local.port),
        };
        PolicySelector {
            src,
            dst,
            proto,
            sport,
            dport,
            priority: policy_priority(local.1, remote.1, proto, sport != 0 || dport != 0),
        }
    }
}

/// The templates of a policy: ESP inside AH when both are negotiated; only the outermost
/// carries tunnel mode.
fn templates(spec: &PolicySpec, src: IpAddr, dst: IpAddr) -> Vec<UserTemplate> {
    let mut protos: Vec<IpsecProtocol> = Vec::new();
    for p in [IpsecProtocol::Esp, IpsecProtocol::Ah] {
        if spec.protocols.contains(&p) {
            protos.push(p);
        }
    }
    let n = protos.len();
    protos
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            let mode = if i + 1 == n {
                spec.mode
            } else {
                EncapMode::Transport
            };
            let mut t = UserTemplate::default();
            t.source(&src);
            t.destination(&dst);
            t.protocol(proto_number(p));
            t.reqid = spec.reqid;
            t.mode = mode_number(mode);
            t.aalgos = u32::MAX;
            t.ealgos = u32::MAX;
            t.calgos = u32::MAX;
            t
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(a: &str, p: u8, end: Option<&str>) -> Selector {
        Selector {
            address: a.parse().unwrap(),
            prefix_len: p,
            range_end: end.map(|e| e.parse().unwrap()),
            protocol: 0,
            port: 0,
        }
    }

    #[test]
    fn ranges_that_are_one_block_become_prefixes() {
        assert_eq!(
            selector_prefix(&sel("10.0.0.0", 0, Some("10.0.0.255"))),
            Some(("10.0.0.0".parse().unwrap(), 24))
        );
        assert_eq!(
            selector_prefix(&sel("10.0.0.7", 0, Some("10.0.0.7"))),
            Some(("10.0.0.7".parse().unwrap(), 32))
        );
        assert_eq!(selector_prefix(&sel("10.0.0.1", 0, Some("10.0.0.4"))), None);
        assert_eq!(selector_prefix(&sel("10.0.0.4", 0, Some("10.0.0.1"))), None);
        assert_eq!(
            selector_prefix(&sel("0.0.0.0", 0, Some("255.255.255.255"))),
            Some(("0.0.0.0".parse().unwrap(), 0))
        );
        assert_eq!(
            selector_prefix(&sel(
                "::",
                0,
                Some("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")
            )),
            Some(("::".parse().unwrap(), 0))
        );
        assert_eq!(selector_prefix(&sel("10.0.0.0", 33, None)), None);
    }

    #[test]
    fn ranges_split_into_the_fewest_blocks() {
        let p = |s: &str, l: u8| (s.parse::<IpAddr>().unwrap(), l);
        assert_eq!(
            selector_prefixes(&sel("10.0.0.1", 0, Some("10.0.0.6"))),
            Some(vec![
                p("10.0.0.1", 32),
                p("10.0.0.2", 31),
                p("10.0.0.4", 31),
                p("10.0.0.6", 32)
            ])
        );
        assert_eq!(
            selector_prefixes(&sel("10.0.0.0", 0, Some("10.0.1.127"))),
            Some(vec![p("10.0.0.0", 24), p("10.0.1.0", 25)])
        );
        assert_eq!(
            selector_prefixes(&sel("255.255.255.254", 0, Some("255.255.255.255"))),
            Some(vec![p("255.255.255.254", 31)])
        );
        assert_eq!(
            selector_prefixes(&sel("0.0.0.1", 0, Some("255.255.255.255"))).map(|v| v.len()),
            Some(32)
        );
        assert_eq!(
            selector_prefixes(&sel("0.0.0.1", 0, Some("255.255.255.254"))),
            None
        );
        assert_eq!(
            selector_prefixes(&sel(
                "::",
                0,
                Some("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")
            )),
            Some(vec![p("::", 0)])
        );
        assert_eq!(
            selector_prefixes(&sel("2001:db8::1", 0, Some("2001:db8::2"))),
            Some(vec![p("2001:db8::1", 128), p("2001:db8::2", 128)])
        );
        assert_eq!(
            selector_prefixes(&sel("10.0.0.2", 0, Some("10.0.0.1"))),
            None
        );
        assert_eq!(selector_prefixes(&sel("10.0.0.1", 0, Some("::1"))), None);
        assert_eq!(
            selector_prefixes(&sel("10.1.0.0", 16, None)),
            Some(vec![p("10.1.0.0", 16)])
        );
    }

    #[test]
    fn soft_limits_are_ninety_percent() {
        assert_eq!(soft_hard(3600), (3240, 3600));
        assert_eq!(soft_hard(1024 * 1024), (943718, 1048576));
        assert_eq!(soft_hard(u64::MAX).1, u64::MAX);
        assert!(soft_hard(u64::MAX).0 < u64::MAX);
    }

    #[test]
    fn more_specific_policies_win() {
        assert!(policy_priority(32, 32, 6, true) < policy_priority(32, 32, 0, false));
        assert!(policy_priority(32, 32, 0, false) < policy_priority(24, 24, 0, false));
    }

    use crate::types::{IntegAlg, Key, Lifetime};
    use netlink_packet_xfrm::XfrmAttrs;

    fn spec(cipher: Option<EspCipher>, integ: Option<IntegAlg>) -> SaSpec {
        let enc = cipher.and_then(alg::cipher).map_or(0, |c| match c {
            KernelCipher::Crypt { key_len, .. } | KernelCipher::Aead { key_len, .. } => key_len,
        });
        SaSpec {
            connection: "c".into(),
            direction: Direction::Outbound,
            protocol: IpsecProtocol::Esp,
            spi: 0x1234abcd,
            src: "192.0.2.1".parse().unwrap(),
            dst: "192.0.2.2".parse().unwrap(),
            mode: EncapMode::Tunnel,
            udp_encap: None,
            cipher,
            enc_key: Key::new(vec![1; enc]),
            integ,
            auth_key: Key::new(vec![2; integ.map_or(0, |i| alg::auth(i).key_len)]),
            lifetime: Lifetime {
                seconds: 1000,
                kilobytes: Some(2),
            },
            local: sel("10.1.0.0", 24, None),
            remote: sel("10.2.0.0", 24, None),
            reqid: 0x4001,
        }
    }

    /// Builds the request without sending it (opening a netlink socket needs no privilege).
    fn built(s: &SaSpec) -> Result<netlink_packet_xfrm::state::ModifyMessage, KernelError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _guard = rt.enter();
        let x = Xfrm::open().unwrap();
        let mut req = x.sa_request(s, "test", false)?;
        Ok(req.message_mut().clone())
    }

    #[test]
    fn sa_requests_carry_algorithms_lifetimes_and_replay_window() {
        let m = built(&spec(
            Some(EspCipher::AesCbc { key_bits: 256 }),
            Some(IntegAlg::HmacSha512),
        ))
        .unwrap();
        let i = &m.user_sa_info;
        assert_eq!(i.id.spi, 0x1234abcd);
        assert_eq!(i.id.proto, 50);
        assert_eq!(i.reqid, 0x4001);
        assert_eq!(i.mode, XFRM_MODE_TUNNEL);
        assert_eq!(i.replay_window, 32);
        assert_eq!(i.lifetime_cfg.hard_add_expires_seconds, 1000);
        assert_eq!(i.lifetime_cfg.soft_add_expires_seconds, 900);
        assert_eq!(i.lifetime_cfg.hard_byte_limit, 2048);
        assert_eq!(i.lifetime_cfg.soft_byte_limit, 1843);
        assert_eq!(i.lifetime_cfg.hard_packet_limit, u64::MAX);
        // Tunnel SAs carry no selector.
        assert_eq!(i.selector.prefixlen_s, 0);
        let mut seen = 0;
        for a in &m.nlas {
            match a {
                XfrmAttrs::EncryptionAlg(e) => {
                    assert!(e.alg_name.starts_with(b"cbc(aes)\0"));
                    assert_eq!(e.alg_key_len, 256);
                    seen += 1;
                }
                XfrmAttrs::AuthenticationAlgTrunc(t) => {
                    assert!(t.alg_name.starts_with(b"hmac(sha512)\0"));
                    assert_eq!(t.alg_key_len, 512);
                    assert_eq!(t.alg_trunc_len, 256);
                    seen += 1;
                }
                XfrmAttrs::EncapsulationTemplate(_) => panic!("no NAT-T asked for"),
                _ => {}
            }
        }
        assert_eq!(seen, 2);
    }

    #[test]
    fn gcm_transport_nat_t_sa_has_key_with_salt_selector_and_encap() {
        let mut s = spec(Some(EspCipher::AesGcm16 { key_bits: 128 }), None);
        s.mode = EncapMode::Transport;
        s.udp_encap = Some((4500, 4501));
        s.local = Selector {
            protocol: 17,
            port: 1701,
            ..sel("192.0.2.1", 32, None)
        };
        s.remote = sel("192.0.2.2", 32, None);
        s.lifetime.kilobytes = None;
        let m = built(&s).unwrap();
        let i = &m.user_sa_info;
        assert_eq!(i.mode, XFRM_MODE_TRANSPORT);
        assert_eq!(i.lifetime_cfg.hard_byte_limit, u64::MAX);
        assert_eq!(i.selector.prefixlen_s, 32);
        assert_eq!(i.selector.proto, 17);
        assert_eq!((i.selector.sport, i.selector.sport_mask), (1701, 0xffff));
        assert_eq!(i.selector.dport_mask, 0);
        let aead = m.nlas.iter().find_map(|a| match a {
            XfrmAttrs::EncryptionAlgAead(e) => Some(e.clone()),
            _ => None,
        });
        let aead = aead.unwrap();
        assert!(aead.alg_name.starts_with(b"rfc4106(gcm(aes))\0"));
        assert_eq!(aead.alg_key_len, 160);
        assert_eq!(aead.alg_icv_len, 128);
        let encap = m.nlas.iter().find_map(|a| match a {
            XfrmAttrs::EncapsulationTemplate(e) => Some(*e),
            _ => None,
        });
        let encap = encap.unwrap();
        assert_eq!(encap.encap_type, 2);
        assert_eq!((encap.encap_sport, encap.encap_dport), (4500, 4501));
        assert!(!m
            .nlas
            .iter()
            .any(|a| matches!(a, XfrmAttrs::AuthenticationAlgTrunc(_))));
    }

    #[test]
    fn malformed_sa_specs_are_refused_before_the_kernel() {
        let cases = [
            (spec(None, Some(IntegAlg::HmacSha1)), "ESP without a cipher"),
            (
                spec(Some(EspCipher::AesCbc { key_bits: 128 }), None),
                "ESP without integrity needs a combined-mode cipher",
            ),
            (
                spec(
                    Some(EspCipher::AesGcm16 { key_bits: 128 }),
                    Some(IntegAlg::HmacSha1),
                ),
                "rfc4106(gcm(aes)) takes no integrity algorithm",
            ),
        ];
        for (s, text) in cases {
            let e = built(&s).unwrap_err();
            assert!(e.to_string().ends_with(text), "{e}");
        }
        let mut s = spec(Some(EspCipher::TripleDes), Some(IntegAlg::HmacMd5));
        s.auth_key = Key::new(vec![0; 20]);
        let e = built(&s).unwrap_err();
        assert!(
            e.to_string()
                .ends_with("hmac(md5) needs a 16-byte key, got 20"),
            "{e}"
        );
        let mut s = spec(None, Some(IntegAlg::HmacSha256));
        s.protocol = IpsecProtocol::Ah;
        s.udp_encap = Some((4500, 4500));
        let e = built(&s).unwrap_err();
        assert!(e.to_string().ends_with("UDP encapsulation of AH"), "{e}");
    }

    #[test]
    fn sa_names_read_well() {
        assert_eq!(
            sa_name(
                IpsecProtocol::Esp,
                0x1234abcd,
                "192.0.2.1".parse().unwrap(),
                "192.0.2.2".parse().unwrap()
            ),
            "ESP SA 0x1234abcd 192.0.2.1 -> 192.0.2.2"
        );
        assert_eq!(
            sa_name(
                IpsecProtocol::Ah,
                0x1001,
                "2001:db8::1".parse().unwrap(),
                "2001:db8::2".parse().unwrap()
            ),
            "AH SA 0x00001001 2001:db8::1 -> 2001:db8::2"
        );
    }
}
