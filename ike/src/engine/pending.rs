//! Work waiting for a helper or the kernel, as plain values: what the engine does when the
//! answer to request `id` arrives. Being data (not closures), the waiting work can be shown
//! in the report, compared in a test, serialised and handed to another process.

use crate::codec::{IdPayload, Payload, SaPayload};
use crate::crypto::Group;
use crate::engine::IsakmpSerial;
use crate::policy::IpsecProtocol;
use crate::policy::PeerName;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// What a helper's answer resumes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CryptoPending {
    /// Aggressive Mode initiator: our DH key pair, for message 1.
    AmI1Keygen {
        serial: IsakmpSerial,
        offer: SaPayload,
    },
    /// Main Mode initiator: our DH key pair, for message 3.
    MmI2Keygen { serial: IsakmpSerial },
    /// Main Mode responder: our DH key pair, for message 4.
    MmR2Keygen { serial: IsakmpSerial },
    /// Aggressive Mode responder: our DH key pair, for message 2.
    AmR1Keygen {
        serial: IsakmpSerial,
        reply_sa: SaPayload,
    },
    /// Phase 1's g^xy; SKEYID comes next.
    P1Shared {
        serial: IsakmpSerial,
        then: KeysReady,
    },
    /// SKEYID from a pre-shared key.
    P1Skeyid {
        serial: IsakmpSerial,
        then: KeysReady,
    },
    /// Our signature; `cert` goes before it in the message.
    P1Signed {
        serial: IsakmpSerial,
        cert: Vec<Payload>,
        then: AuthReady,
    },
    /// The verdict on the peer's signature.
    P1Verified {
        serial: IsakmpSerial,
        peer: PeerName,
        then: PeerAuthenticated,
    },
    /// Quick Mode initiator: the PFS key pair, for message 1.
    QmI1Keygen { serial: IsakmpSerial, msgid: u32 },
    /// Quick Mode responder: the PFS key pair; g^xy with `peer_public` follows.
    QmR1Keygen {
        serial: IsakmpSerial,
        msgid: u32,
        group: Group,
        peer_public: Vec<u8>,
    },
    /// The PFS g^xy of a Quick Mode exchange.
    QmShared {
        serial: IsakmpSerial,
        msgid: u32,
        then: QmShared,
    },
}

/// What a kernel answer resumes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KernelPending {
    /// One inbound SPI of a Quick Mode exchange.
    QmSpi {
        serial: IsakmpSerial,
        msgid: u32,
        protocol: IpsecProtocol,
    },
    /// One inbound SA the initiator installs before it sends message 3.
    QmInboundInstalled { serial: IsakmpSerial, msgid: u32 },
}

/// The kernel's answer to a request that waits for one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum KernelAnswer {
    SpiAllocated(u32),
    Installed,
    Failed(String),
}

/// What a phase-1 exchange does once SKEYID and its keys are ready.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeysReady {
    /// Main Mode initiator: send message 5.
    MmI5Send,
    /// Main Mode responder: message 4 is out, wait for 5.
    MmR4Sent,
    /// Aggressive Mode responder: authenticate, then send message 2.
    AmR2Auth {
        reply_sa: SaPayload,
        public: Vec<u8>,
        nr: Vec<u8>,
        id: IdPayload,
    },
    /// Aggressive Mode initiator: check message 2's authentication.
    AmI2Check {
        payloads: Vec<Payload>,
        id_body: Vec<u8>,
    },
}

/// What a phase-1 exchange does once the peer's authentication checked out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeerAuthenticated {
    /// Main Mode initiator: message 6 was good.
    MmI6Done { iv: Vec<u8>, digest: Vec<u8> },
    /// Main Mode responder: message 5 was good; answer with message 6.
    MmR6Answer {
        iv: Vec<u8>,
        digest: Vec<u8>,
        local: SocketAddr,
        remote: SocketAddr,
    },
    /// Aggressive Mode initiator: message 2 was good; authenticate for message 3.
    AmI3Auth,
    /// Aggressive Mode responder: message 3 was good; it came to and from these addresses
    /// (the NAT-T float is followed only now that it authenticated).
    AmR3Done {
        digest: Vec<u8>,
        local: SocketAddr,
        remote: SocketAddr,
    },
}

/// What a phase-1 exchange does with our authentication payloads once they are ready.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuthReady {
    /// Main Mode initiator: message 5.
    MmI5 { id: IdPayload, first_contact: bool },
    /// Main Mode responder: message 6.
    MmR6 { id: IdPayload },
    /// Aggressive Mode responder: message 2.
    AmR2 {
        reply_sa: SaPayload,
        public: Vec<u8>,
        nr: Vec<u8>,
        id: IdPayload,
    },
    /// Aggressive Mode initiator: message 3.
    AmI3,
}

/// What a Quick Mode exchange does once its PFS g^xy is known.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum QmShared {
    /// Responder: send message 2.
    R2Send,
    /// Initiator: install inbound SAs, then send message 3.
    I3Send,
}

impl CryptoPending {
    /// The phase-1 serial the work belongs to.
    /// Whether this is work for an ISAKMP SA whose peer has authenticated (Quick Mode and
    /// its PFS): such work goes before a stranger's phase 1 when helpers are short.
    pub fn under_established_sa(&self) -> bool {
        matches!(
            self,
            CryptoPending::QmI1Keygen { .. }
                | CryptoPending::QmR1Keygen { .. }
                | CryptoPending::QmShared { .. }
        )
    }

    pub fn serial(&self) -> IsakmpSerial {
        match self {
            CryptoPending::AmI1Keygen { serial, .. }
            | CryptoPending::MmI2Keygen { serial }
            | CryptoPending::MmR2Keygen { serial }
            | CryptoPending::AmR1Keygen { serial, .. }
            | CryptoPending::P1Shared { serial, .. }
            | CryptoPending::P1Skeyid { serial, .. }
            | CryptoPending::P1Signed { serial, .. }
            | CryptoPending::P1Verified { serial, .. }
            | CryptoPending::QmI1Keygen { serial, .. }
            | CryptoPending::QmR1Keygen { serial, .. }
            | CryptoPending::QmShared { serial, .. } => *serial,
        }
    }

    /// What is awaited, as the report says it.
    pub fn describe(&self) -> &'static str {
        match self {
            CryptoPending::AmI1Keygen { .. }
            | CryptoPending::MmI2Keygen { .. }
            | CryptoPending::MmR2Keygen { .. }
            | CryptoPending::AmR1Keygen { .. } => "phase 1 DH key pair",
            CryptoPending::P1Shared { .. } => "phase 1 DH shared secret",
            CryptoPending::P1Skeyid { .. } => "SKEYID from the pre-shared key",
            CryptoPending::P1Signed { .. } => "our RSA signature",
            CryptoPending::P1Verified { .. } => "check of the peer's RSA signature",
            CryptoPending::QmI1Keygen { .. } | CryptoPending::QmR1Keygen { .. } => {
                "Quick Mode PFS key pair"
            }
            CryptoPending::QmShared { .. } => "Quick Mode PFS shared secret",
        }
    }
}

impl KernelPending {
    /// The phase-1 serial the work belongs to.
    pub fn serial(&self) -> IsakmpSerial {
        match self {
            KernelPending::QmSpi { serial, .. }
            | KernelPending::QmInboundInstalled { serial, .. } => *serial,
        }
    }

    /// What is awaited, as the report says it.
    pub fn describe(&self) -> &'static str {
        match self {
            KernelPending::QmSpi { .. } => "inbound SPI",
            KernelPending::QmInboundInstalled { .. } => "inbound SA installed",
        }
    }
}
