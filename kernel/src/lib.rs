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

pub mod alg;
mod error;
mod events;
mod request;
mod xfrm;

pub use error::{errno_name, KernelError, Op};
pub use events::{translate, XfrmEvents};
pub use request::{distinct, Applied, NoKernel};
pub use xfrm::{
    sa_name, selector_prefix, Flushed, PolicyDir, Xfrm, OWNED_REQIDS, OWNED_REQID_BASE,
    POLICY_PRIORITY_BASE, REPLAY_WINDOW, SOFT_PERCENT, SPI_RANGE,
};
