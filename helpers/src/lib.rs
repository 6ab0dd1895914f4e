//! Helper processes: the crypto work a helper does, the pool of helper processes the child
//! talks to, and the process-level building blocks a helper needs (typed IPC over
//! socketpairs, the privilege drop and the seccomp allow-lists).
//!
//! `ipc` and `privdrop` live here rather than in `privsep` because a helper process needs them
//! and the dependency arrows point one way (`privsep` -> `helpers` -> `ike`); `privsep`
//! re-exports them as `privsep::ipc` and `privsep::privdrop`.

pub mod ipc;
pub mod pool;
pub mod privdrop;
pub mod seccomp;
pub mod service;
mod sys;
