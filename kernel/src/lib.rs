//! Linux IPsec (XFRM) over netlink for the daemon: SPI allocation, SA and policy install and
//! delete, and removal of our own leftovers at start.
//!
//! Ownership: everything we install carries a reqid in [`OWNED_REQIDS`] (0x4000-0x7fff);
//! [`Xfrm::flush_ours`] deletes exactly that, so other software's SAs and policies survive.
//!
//! Errors name the operation, the SA or policy, and the kernel's errno in one line (see
//! [`KernelError`]), e.g. on a kernel without ESP:
//! `kernel refused ESP SA 0x1234abcd 192.0.2.1 -> 192.0.2.2: Protocol not supported
//! (EPROTONOSUPPORT: this kernel has no ESP support)`.
//!
//! Use (inside a tokio runtime; the parent process, which holds CAP_NET_ADMIN):
//!
//! ```text
//! let xfrm = Xfrm::open()?;                  // NETLINK_XFRM socket, driven by a spawned task
//! xfrm.flush_ours().await?;                  // at start: our leftovers only
//! let mut events = XfrmEvents::open()?;      // ACQUIRE / EXPIRE / MAPPING of ours
//! if let Some(outcome) = xfrm.answer(&request).await { /* tell the requester */ }
//! ```
//!
//! - [`Xfrm::alloc_spi`]: XFRM_MSG_ALLOCSPI in [`SPI_RANGE`] (0x1000-0xffffffff; as pluto,
//!   never 0x100-0xfff); leaves a larval SA that `add_sa` replaces.
//! - [`Xfrm::add_sa`]: inbound SAs by XFRM_MSG_UPDSA over the larval SA (NEWSA when there
//!   is none), outbound by XFRM_MSG_NEWSA; algorithms from [`alg`]; replay window
//!   [`REPLAY_WINDOW`]; hard lifetimes as negotiated (KB x 1024), soft ones at
//!   [`SOFT_PERCENT`]%; `UDP_ENCAP_ESPINUDP` with the NAT-T ports; transport SAs carry the
//!   traffic selector, tunnel SAs none.
//! - [`Xfrm::add_policies`] / [`Xfrm::delete_policies`]: out and in, plus fwd in tunnel
//!   mode, with protocol and ports; AH+ESP as ESP inside AH.
//! - [`NoKernel`]: the `-n` backend; SPIs from a counter, everything else succeeds.
//!
//! What is asked ([`XfrmRequest`], with [`SaSpec`] and [`PolicySpec`]) and what is reported
//! ([`Outcome`], [`XfrmEvent`]) are this crate's own plain XFRM data; keys travel in
//! [`Key`], which wipes itself. The daemon maps its IKE types onto these.

pub mod alg;
mod bypass;
mod error;
mod events;
mod request;
mod types;
mod xfrm;

pub use bypass::socket_bypass_policy;
pub use error::{errno_name, KernelError, Op};
pub use events::{translate, XfrmEvents};
pub use request::{distinct, Applied, NoKernel};
pub use types::{
    Direction, EncapMode, EspCipher, IntegAlg, IpsecProtocol, Key, Lifetime, Outcome, PolicySpec,
    SaSpec, Selector, XfrmEvent, XfrmRequest,
};
pub use xfrm::{
    sa_name, selector_prefix, selector_prefixes, Flushed, KernelSa, PolicyDir, Xfrm, OWNED_REQIDS,
    OWNED_REQID_BASE, POLICY_PRIORITY_BASE, REPLAY_WINDOW, SOFT_PERCENT, SPI_RANGE,
};
