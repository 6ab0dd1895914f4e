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
    /// First message: the sockets, their descriptors attached in the same order.
    Sockets(Vec<SocketInfo>),
    /// SIGHUP: reread the configuration (the parent reads and checks the file).
    Reload,
    /// SIGUSR1: write the report.
    Report,
    /// SIGTERM: shut down.
    Shutdown,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ToParent {
    /// Privileges dropped, sockets taken, serving.
    Ready,
}
