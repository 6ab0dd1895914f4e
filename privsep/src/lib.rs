//! The isakmpd daemon: command line, files, logging, the parent and child processes.
//!
//! `ipc` (typed framed messages with descriptor passing) and `privdrop` live in the
//! `helpers` crate, because helper processes need them too and crates depend one way only;
//! they are re-exported here.

pub mod addresses;
pub mod authority;
pub mod capture;
pub mod child;
pub mod cmdline;
pub mod commands;
pub mod config;
pub mod crypto_queue;
pub mod daemon;
pub mod driver;
pub mod fifo_file;
pub mod files;
pub mod kernel_map;
pub mod log;
pub mod monitor;
pub mod notes;
pub mod parent;
pub mod pcap;
pub mod proto;
pub mod ratelimit;
pub mod report;
pub mod sadb;
mod sys;
pub mod table;
pub mod updown;
pub mod updown_queue;

pub use helpers::ipc;
pub use helpers::privdrop;

/// Environment variable that tells a re-executed `isakmpd` which process it is.
pub const ROLE_ENV: &str = "ISAKMPD_PRIVSEP_ROLE";
/// Descriptor on which a child finds its socketpair end to the parent.
pub const CHILD_FD: std::os::fd::RawFd = 3;
