//! The matrix's scenarios, described once, independently of any implementation: what each
//! side offers and how it is reached. [`super::ours`], [`super::strongswan`] and
//! [`super::libreswan`] turn a [`Conn`] into their own configuration syntax.

use super::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cipher {
    Aes128,
    Aes256,
    TripleDes,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hash {
    Sha1,
    Sha256,
}

/// A phase 1 transform: cipher, hash, Diffie-Hellman group (IANA number).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ike {
    pub cipher: Cipher,
    pub hash: Hash,
    pub group: u16,
}

/// A phase 2 (ESP) transform, with the PFS group if any.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Esp {
    pub cipher: Cipher,
    pub hash: Hash,
    pub pfs: Option<u16>,
}

/// A phase 1 identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Id {
    Addr(String),
    Fqdn(String),
    /// A distinguished name in the comma form, e.g. `C=ZZ, O=isakmpd interop, CN=ours.fz.test`.
    Dn(String),
}

impl Id {
    pub fn value(&self) -> &str {
        match self {
            Id::Addr(a) | Id::Fqdn(a) | Id::Dn(a) => a,
        }
    }
}

/// Our `DPD-timeout` in the DPD scenario, seconds: the peer is declared dead this long after
/// the first unanswered R-U-THERE.
pub const DPD_TIMEOUT: u32 = 4;

/// The subject of the test PKI's certificate `name` (`tests/interop/mkcerts.sh`).
pub fn pki_dn(name: &str) -> String {
    format!("C=ZZ, O=isakmpd interop, CN={name}.fz.test")
}

/// X.509 authentication with the test PKI ([`super::pki`]) instead of the pre-shared key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct X509 {
    /// The PKI's directory: `ca.pem`, `crl.pem`, `NAME.pem` and `NAME.key`.
    pub pki: std::path::PathBuf,
    /// Which certificate the peer shows: `peer`, or `revoked` (which our CRL lists).
    pub peer_cert: &'static str,
}

/// Which side starts the negotiation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    OursInitiates,
    OursResponds,
}

impl Role {
    pub const ALL: [Role; 2] = [Role::OursInitiates, Role::OursResponds];
    pub fn name(self) -> &'static str {
        match self {
            Role::OursInitiates => "ours-init",
            Role::OursResponds => "ours-resp",
        }
    }
}

/// One connection between us and the peer, as both sides are to be configured.
#[derive(Clone, Debug)]
pub struct Conn {
    /// Our local address and the peer's.
    pub ours_addr: String,
    pub peer_addr: String,
    /// The address each side sends to (differs from the other's local address behind NAT).
    pub ours_sees_peer: String,
    pub peer_sees_ours: String,
    pub ours_id: Id,
    pub peer_id: Id,
    pub aggressive: bool,
    /// What we offer and accept.
    pub ours_ike: Ike,
    pub ours_esp: Esp,
    /// What the peer offers and accepts (equal to ours except in a mismatch).
    pub peer_ike: Ike,
    pub peer_esp: Esp,
    /// Transport mode between the gateways; else a tunnel between the client subnets.
    pub transport: bool,
    /// Lifetimes in seconds (both sides), if not the defaults.
    pub ike_life: Option<u32>,
    pub esp_life: Option<u32>,
    /// Our DPD check interval (seconds) and what we do with a dead peer.
    pub dpd: Option<(u32, &'static str)>,
    /// The peer starts the connection by itself whenever it is loaded or (re)started.
    pub peer_autostart: bool,
    /// Our `Check-interval`: how soon a down `Connections=` entry is started again.
    pub check_interval: u32,
    /// NAT-T keepalive interval (both sides), seconds.
    pub keepalive: u32,
    /// Certificates instead of the pre-shared key.
    pub x509: Option<X509>,
}

impl Conn {
    /// The direct (no NAT) default: AES-128/SHA1/MODP2048 in both phases, no PFS, tunnel.
    pub fn direct() -> Self {
        let ike = Ike {
            cipher: Cipher::Aes128,
            hash: Hash::Sha1,
            group: 14,
        };
        let esp = Esp {
            cipher: Cipher::Aes128,
            hash: Hash::Sha1,
            pfs: None,
        };
        Self {
            ours_addr: OURS_DIRECT.into(),
            peer_addr: PEER_DIRECT.into(),
            ours_sees_peer: PEER_DIRECT.into(),
            peer_sees_ours: OURS_DIRECT.into(),
            ours_id: Id::Addr(OURS_DIRECT.into()),
            peer_id: Id::Addr(PEER_DIRECT.into()),
            aggressive: false,
            ours_ike: ike,
            ours_esp: esp,
            peer_ike: ike,
            peer_esp: esp,
            transport: false,
            ike_life: None,
            esp_life: None,
            dpd: None,
            peer_autostart: false,
            check_interval: 3600,
            keepalive: 20,
            x509: None,
        }
    }

    /// X.509 with the PKI in `pki`: the peer shows `peer_cert`, identities are `DN`s
    /// (`dn`) or the certificates' subjectAltName DNS names.
    pub fn with_x509(self, pki: &Path, peer_cert: &'static str, dn: bool) -> Self {
        let id = |n: &str| {
            if dn {
                Id::Dn(pki_dn(n))
            } else {
                Id::Fqdn(format!("{n}.fz.test"))
            }
        };
        Conn {
            ours_id: id("ours"),
            peer_id: id(peer_cert),
            x509: Some(X509 {
                pki: pki.to_path_buf(),
                peer_cert,
            }),
            ..self
        }
    }

    pub fn with_ike(mut self, ike: Ike) -> Self {
        self.ours_ike = ike;
        self.peer_ike = ike;
        self
    }

    pub fn with_esp(mut self, esp: Esp) -> Self {
        self.ours_esp = esp;
        self.peer_esp = esp;
        self
    }

    /// The NATed side is the initiator's: us when we initiate, else the peer.
    pub fn natted(mut self, role: Role) -> Self {
        match role {
            Role::OursInitiates => {
                self.ours_addr = OURS_NATED.into();
                self.ours_id = Id::Addr(OURS_NATED.into());
                self.peer_sees_ours = ROUTER_PEER_SIDE.into();
            }
            Role::OursResponds => {
                self.peer_addr = PEER_NATED.into();
                self.peer_id = Id::Addr(PEER_NATED.into());
                self.ours_sees_peer = ROUTER_OURS_SIDE.into();
            }
        }
        self
    }
}

/// The scenarios, in the order the matrix runs them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    MmAes128Sha1Modp2048,
    MmAes256Sha256Modp2048,
    Mm3desSha1Modp1024,
    MmAes128Sha256Ecp256,
    AmPskFqdn,
    /// X.509 certificates: the hook for branch `x509` (see [`super::run::x509`]).
    X509,
    QmPfsTunnel,
    QmPfsTransport,
    NatT,
    Dpd,
    Rekey,
    Delete,
    Mismatch,
}

impl Scenario {
    pub const ALL: [Scenario; 13] = [
        Scenario::MmAes128Sha1Modp2048,
        Scenario::MmAes256Sha256Modp2048,
        Scenario::Mm3desSha1Modp1024,
        Scenario::MmAes128Sha256Ecp256,
        Scenario::AmPskFqdn,
        Scenario::X509,
        Scenario::QmPfsTunnel,
        Scenario::QmPfsTransport,
        Scenario::NatT,
        Scenario::Dpd,
        Scenario::Rekey,
        Scenario::Delete,
        Scenario::Mismatch,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::MmAes128Sha1Modp2048 => "mm-aes128-sha1-modp2048",
            Scenario::MmAes256Sha256Modp2048 => "mm-aes256-sha256-modp2048",
            Scenario::Mm3desSha1Modp1024 => "mm-3des-sha1-modp1024",
            Scenario::MmAes128Sha256Ecp256 => "mm-aes128-sha256-ecp256",
            Scenario::AmPskFqdn => "am-psk-fqdn",
            Scenario::X509 => "mm-x509",
            Scenario::QmPfsTunnel => "qm-pfs-tunnel",
            Scenario::QmPfsTransport => "qm-pfs-transport",
            Scenario::NatT => "nat-t",
            Scenario::Dpd => "dpd",
            Scenario::Rekey => "rekey",
            Scenario::Delete => "delete",
            Scenario::Mismatch => "mismatch",
        }
    }

    /// Scenarios named in `E2E_INTEROP_SCENARIOS` (comma-separated), or all.
    pub fn selected() -> Vec<Scenario> {
        match std::env::var("E2E_INTEROP_SCENARIOS") {
            Ok(list) if !list.trim().is_empty() => Self::ALL
                .into_iter()
                .filter(|s| list.split(',').any(|n| n.trim() == s.name()))
                .collect(),
            _ => Self::ALL.to_vec(),
        }
    }

    /// How both sides are configured for this scenario in this role.
    pub fn conn(self, role: Role) -> Conn {
        let ike = |cipher, hash, group| Ike {
            cipher,
            hash,
            group,
        };
        let pfs = Esp {
            cipher: Cipher::Aes128,
            hash: Hash::Sha1,
            pfs: Some(14),
        };
        let c = Conn::direct();
        match self {
            Scenario::MmAes128Sha1Modp2048 | Scenario::X509 | Scenario::Delete => c,
            Scenario::MmAes256Sha256Modp2048 => c
                .with_ike(ike(Cipher::Aes256, Hash::Sha256, 14))
                .with_esp(Esp {
                    cipher: Cipher::Aes256,
                    hash: Hash::Sha256,
                    pfs: None,
                }),
            Scenario::Mm3desSha1Modp1024 => c
                .with_ike(ike(Cipher::TripleDes, Hash::Sha1, 2))
                .with_esp(Esp {
                    cipher: Cipher::TripleDes,
                    hash: Hash::Sha1,
                    pfs: None,
                }),
            // Phase 1 only: Libreswan refuses ECP groups for PFS in IKEv1
            // ("ESP DH algorithm 'dh19' is not supported by IKEv1").
            Scenario::MmAes128Sha256Ecp256 => c
                .with_ike(ike(Cipher::Aes128, Hash::Sha256, 19))
                .with_esp(Esp {
                    cipher: Cipher::Aes128,
                    hash: Hash::Sha256,
                    pfs: None,
                }),
            Scenario::AmPskFqdn => Conn {
                aggressive: true,
                ours_id: Id::Fqdn("ours.fz.test".into()),
                peer_id: Id::Fqdn("peer.fz.test".into()),
                ..c
            },
            Scenario::QmPfsTunnel => c.with_esp(pfs),
            Scenario::QmPfsTransport => Conn {
                transport: true,
                ..c.with_esp(pfs)
            },
            Scenario::NatT => Conn {
                keepalive: 2,
                ..c.natted(role)
            },
            Scenario::Dpd => Conn {
                dpd: Some((2, "restart")),
                check_interval: 2,
                peer_autostart: role == Role::OursResponds,
                ..c
            },
            Scenario::Rekey => Conn {
                ike_life: Some(24),
                esp_life: Some(14),
                ..c.with_esp(pfs)
            },
            Scenario::Mismatch => Conn {
                peer_ike: ike(Cipher::Aes128, Hash::Sha1, 15),
                ..c.with_ike(ike(Cipher::Aes256, Hash::Sha256, 14))
            },
        }
    }
}
