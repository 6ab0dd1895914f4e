//! Messages between the parent and the child. What the child may send is the short list of
//! `ToParent`: the parent treats each like a packet from the Internet (checked, bounded,
//! refused when out of place), and nothing in it names a file, a command, a script or a
//! configuration value.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// One UDP socket the parent bound; the descriptor travels with the message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SocketInfo {
    pub local: SocketAddr,
    /// The NAT-T (UDP-encapsulation) port, `-N`.
    pub natt: bool,
}

/// The FIFO commands that act on negotiations, which the parent (the FIFO's reader)
/// forwards to the child, already parsed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Negotiation {
    /// `c name`
    Connect(String),
    /// `t [main|quick] name`
    Teardown {
        phase: Option<fifo::Phase>,
        name: String,
    },
    /// `T`
    TeardownAll,
    /// `d cookies msgid`
    DeleteSa {
        icookie: [u8; 8],
        rcookie: [u8; 8],
        msgid: Option<u32>,
    },
    /// `M active|passive`
    Mode(fifo::Mode),
}

/// Which report the parent asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReportKind {
    /// SIGUSR1, FIFO `r`: the state report, for the `-R` file.
    State,
    /// FIFO `S`: the SA details, for the result file.
    Sas,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ToChild {
    /// First messages: the sockets, then the helper channels, their descriptors attached
    /// in that order (sockets first), at most `ipc::MAX_FDS` to a message: a gateway with
    /// many addresses has more sockets than one frame carries. `more`: another follows.
    Start {
        sockets: Vec<SocketInfo>,
        helpers: usize,
        more: bool,
    },
    /// A replacement helper channel (descriptor attached), answering `NewHelper`.
    Helper,
    /// The parent refused `NewHelper` (already as many live helpers as `-j` allows).
    NoHelper,
    /// Write a report: answer with `ToParent::Report` of the same kind.
    Report(ReportKind),
    /// SIGTERM, FIFO `Q`: shut down.
    Shutdown,
    /// The configuration (at start and after each reload), without secrets.
    Config(crate::config::ChildConfig),
    /// Only with `-j 0` (no helper processes): the secrets, for crypto done in the child.
    Secrets(helpers::service::Secrets),
    /// The kernel's answer to a request, or an event (acquire, expire).
    Kernel(ike::engine::KernelEvent),
    /// A FIFO command for the negotiations.
    Command(Negotiation),
    /// FIFO `D`: debug levels (the parent has set its own).
    Debug(fifo::DebugSetting),
    /// Packet capture on or off: the engine then outputs (or stops) cleartext messages.
    Capture(bool),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ToParent {
    /// Privileges dropped, filter installed, sockets taken, serving.
    Ready,
    /// A helper died: start another. The parent starts one only while fewer than `-j`
    /// helpers live, so a compromised child cannot make it fork without bound.
    NewHelper,
    /// A report the parent asked for; the parent writes it to the file it chose.
    Report { kind: ReportKind, text: String },
    /// A captured IKE message, in cleartext, for the pcap file (only while capture is on).
    Packet {
        from: SocketAddr,
        to: SocketAddr,
        bytes: Vec<u8>,
    },
    /// Ask the kernel for something; checked against the parent's policy and table first.
    Kernel {
        id: ike::engine::RequestId,
        request: Box<ike::engine::KernelRequest>,
    },
}
