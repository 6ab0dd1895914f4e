//! Messages between the parent and the child.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// One UDP socket the parent bound; the descriptor travels with the message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SocketInfo {
    pub local: SocketAddr,
    /// The NAT-T (UDP-encapsulation) port, `-N`.
    pub natt: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ToChild {
    /// First message: the sockets, then `helpers` helper channels; the descriptors are
    /// attached in that order (sockets first).
    Start {
        sockets: Vec<SocketInfo>,
        helpers: usize,
    },
    /// A replacement helper channel (descriptor attached), answering `NewHelper`.
    Helper,
    /// The parent refused `NewHelper` (already as many live helpers as `-j` allows).
    NoHelper,
    /// SIGHUP: reread the configuration (the parent reads and checks the file).
    Reload,
    /// SIGUSR1: write the report.
    Report,
    /// SIGTERM: shut down.
    Shutdown,
    /// The configuration (at start and after each reload), without secrets.
    Config(crate::config::ChildConfig),
    /// Only with `-j 0` (no helper processes): the secrets, for crypto done in the child.
    Secrets(helpers::service::Secrets),
    /// The kernel's answer to a request, or an event (acquire, expire).
    Kernel(ike::engine::KernelEvent),
    /// The command FIFO (descriptor attached), to read and parse.
    Fifo,
    /// Packet capture on or off: the engine then outputs (or stops) cleartext messages.
    Capture(bool),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ToParent {
    /// Privileges dropped, sockets taken, serving.
    Ready,
    /// A helper died: start another. The parent starts one only while fewer than `-j`
    /// helpers live, so a compromised child cannot make it fork without bound.
    NewHelper,
    /// The state report (answer to `Report`), for the parent to write to the `-R` file.
    Report(String),
    /// FIFO commands only the parent may carry out.
    Fifo(ParentCommand),
    /// A captured IKE message, in cleartext, for the pcap file.
    Packet {
        from: std::net::SocketAddr,
        to: std::net::SocketAddr,
        bytes: Vec<u8>,
    },
    /// A connection's tunnel came up or went down: run its updown script.
    Updown(crate::updown::Request),
    /// Ask the kernel for something; checked against the monitor's allow-list first.
    Kernel {
        id: ike::engine::RequestId,
        request: Box<ike::engine::KernelRequest>,
    },
}

/// What the child asks of the parent on behalf of a FIFO command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ParentCommand {
    /// `C ...`: a configuration transaction on the parent's database.
    Config(fifo::ConfigOp),
    /// `R`: reload, as on SIGHUP.
    Reload,
    /// `Q`: shut down, as on SIGTERM.
    Quit,
    /// `D ...`: debug levels (the child has set its own).
    Debug(fifo::DebugSetting),
    /// `S`: the SA details, for the result file.
    Result(String),
    /// `p on[=path]` / `p off`: the parent opens or closes the capture file.
    Capture(fifo::PacketCapture),
}
