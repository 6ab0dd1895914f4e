//! Phase 1 identities and authentication: our ID and certificate, certificate requests,
//! vendor IDs, our HASH or signature, and the check of the peer's.

use super::*;

/// The smallest RSA modulus and public exponent a peer's key may have: shorter moduli are
/// factorable, and small exponents (3) are what signature forgeries against lax PKCS#1
/// checks rely on.
const MIN_RSA_BITS: u32 = 1024;
const MIN_RSA_EXPONENT: u32 = 65537;

/// Keys found usable are remembered by their SHA-1, up to this many: decoding a key costs
/// OpenSSL 3 about a million instructions, as much again as the rest of a Main Mode.
const USABLE_KEYS_KEPT: usize = 4096;

impl Engine {
    /// The configured raw RSA keys of the peers are checked once, when the policy comes,
    /// not at every negotiation; a weak one is named now (and refused when used).
    pub(in crate::engine) fn check_configured_keys(&mut self) {
        let keys: Vec<(PeerName, Vec<u8>)> = self
            .ctx
            .cfg
            .policy
            .peers
            .iter()
            .filter_map(|p| match &p.credentials {
                Credentials::RsaSig {
                    peer_public_key: Some(k),
                    ..
                } => Some((p.name.clone(), k.clone())),
                _ => None,
            })
            .collect();
        for (peer, key) in keys {
            if let Err(e) = self.usable_rsa_key(key) {
                self.ctx.log(LogLevel::Warning, format!("peer {peer}: {e}"));
            }
        }
    }

    /// `der` if it is a usable RSA key (see `check_rsa_key`).
    fn usable_rsa_key(&mut self, der: Vec<u8>) -> Result<Vec<u8>, PeerKeyError> {
        let digest = crate::crypto::hash(HashAlg::Sha1, &[&der]);
        if self.usable_keys.contains(&digest) {
            return Ok(der);
        }
        check_rsa_key(&der)?;
        if self.usable_keys.len() >= USABLE_KEYS_KEPT {
            self.usable_keys.clear();
        }
        self.usable_keys.insert(digest);
        Ok(der)
    }
}

/// A peer's RSA key (DER SubjectPublicKeyInfo) that is long enough, with an odd exponent
/// of at least 65537.
fn check_rsa_key(der: &[u8]) -> Result<(), PeerKeyError> {
    let rsa = openssl::pkey::PKey::public_key_from_der(der)
        .and_then(|k| k.rsa())
        .map_err(|_| PeerKeyError::NotRsa)?;
    let bits = rsa.n().num_bits().max(0).unsigned_abs();
    let e = rsa.e();
    let min_e =
        openssl::bn::BigNum::from_u32(MIN_RSA_EXPONENT).map_err(|_| PeerKeyError::NotRsa)?;
    let small_e = e.ucmp(&min_e) == std::cmp::Ordering::Less;
    if bits < MIN_RSA_BITS || small_e || !e.is_bit_set(0) {
        return Err(PeerKeyError::Weak {
            bits,
            exponent: e.to_dec_str().map(|s| s.to_string()).unwrap_or_default(),
        });
    }
    Ok(())
}

/// Why there is no public key to check the peer's signature with.
#[derive(Debug)]
pub(in crate::engine) enum PeerKeyError {
    /// Not an RSA key.
    NotRsa,
    /// Too short a modulus, or too small or even an exponent.
    Weak { bits: u32, exponent: String },
    /// The certificate the peer sent did not verify.
    Sent(x509::X509Error),
    /// The certificate held for it in `Cert-directory` did not verify.
    Held(x509::X509Error),
    /// Neither sent nor configured (certificate encodings we do not take are named).
    None {
        other_encodings: Vec<u8>,
        identity: String,
    },
}

impl std::fmt::Display for PeerKeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PeerKeyError::NotRsa => f.write_str("the peer's public key is not an RSA key"),
            PeerKeyError::Weak { bits, exponent } => write!(
                f,
                "the peer's RSA key of {bits} bits with exponent {exponent} is refused (at least {MIN_RSA_BITS} bits and an odd exponent of at least {MIN_RSA_EXPONENT})"
            ),
            PeerKeyError::Sent(e) => e.fmt(f),
            PeerKeyError::Held(e) => write!(f, "{e} (held in Cert-directory)"),
            PeerKeyError::None {
                other_encodings,
                identity,
            } => {
                f.write_str("peer sent no X.509 certificate")?;
                if !other_encodings.is_empty() {
                    write!(
                        f,
                        " (certificate encodings {other_encodings:?} are not supported)"
                    )?;
                }
                write!(
                    f,
                    ", and no public key or certificate for {identity} is configured"
                )
            }
        }
    }
}

impl Engine {
    /// Our ID payload in ISAKMP SA `serial` (from its peer section and our address), its body
    /// kept for HASH_I/HASH_R; with the peer section.
    pub(in crate::engine) fn own_id(&mut self, serial: IsakmpSerial) -> Option<(Peer, IdPayload)> {
        let p1 = self.phase1.get(&serial)?;
        let peer = self.peer_by_name(&p1.peer)?;
        let id = self.own_identity(&peer, p1.local);
        let body = body_of(&Payload::Id(id.clone())).unwrap_or_default();
        self.phase1.get_mut(&serial)?.hs()?.id_own_b = body;
        Some((peer, id))
    }

    /// Our identity for `peer`: its configured `ID`, else our address. With a certificate
    /// to send, a configured DN is sent as the certificate writes it, and without an `ID`
    /// the address is used only if the certificate carries it, else the certificate's subject.
    pub(in crate::engine) fn own_identity(&self, peer: &Peer, local: SocketAddr) -> IdPayload {
        let address = match local.ip() {
            std::net::IpAddr::V4(a) => Identity::Ipv4(a),
            std::net::IpAddr::V6(a) => Identity::Ipv6(a),
        };
        let identity = match (peer.local_id.clone(), self.own_cert(peer)) {
            (Some(id), Some(cert)) => x509::as_in_certificate(cert, id),
            (Some(id), None) => id,
            (None, Some(cert)) => x509::default_identity(cert, local.ip()).unwrap_or(address),
            (None, None) => address,
        };
        IdPayload {
            protocol: 0,
            port: 0,
            identity,
        }
    }

    /// The certificate we show `peer`: with RSA signatures, ours from `Cert-directory` that
    /// carries our ID for it (else the first of ours).
    pub(in crate::engine) fn own_cert(&self, peer: &Peer) -> Option<&[u8]> {
        match peer.credentials {
            Credentials::RsaSig { .. } => self
                .ctx
                .cfg
                .policy
                .x509
                .own_certificate(peer.local_id.as_ref()),
            Credentials::PreShared { .. } => None,
        }
    }

    /// CERTREQ payloads for `peer`, one per CA we trust (X.509 signature certificates, named
    /// by the CA's subject), when the peer must prove its key with a certificate.
    pub(in crate::engine) fn cert_requests(&self, peer: &Peer) -> Vec<Payload> {
        match peer.credentials {
            Credentials::RsaSig {
                peer_public_key: None,
                ..
            } => self
                .ctx
                .cfg
                .policy
                .x509
                .ca_names()
                .into_iter()
                .map(|data| {
                    Payload::CertReq(CertPayload {
                        encoding: cert_encoding::X509_SIGNATURE,
                        data,
                    })
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// CERTREQ payloads in Main Mode messages 3 and 4, once RSA signatures are chosen.
    pub(in crate::engine) fn cert_requests_for(
        &self,
        serial: IsakmpSerial,
        peer: &Peer,
    ) -> Vec<Payload> {
        let rsa = self
            .phase1
            .get(&serial)
            .and_then(|p| p.chosen.as_ref())
            .is_some_and(|c| c.transform.auth == AuthMethod::RsaSig);
        if rsa {
            self.cert_requests(peer)
        } else {
            Vec::new()
        }
    }

    /// The public key (DER SubjectPublicKeyInfo) the peer's signature must verify with: the
    /// configured raw key; else the key of the certificate the peer sent (the first X.509
    /// signature CERT, the others as intermediates); else of a `Cert-directory` certificate
    /// carrying the peer's identity. A certificate must verify against our CAs and CRLs and
    /// carry the identity of the peer's ID payload.
    pub(in crate::engine) fn peer_public_key(
        &mut self,
        peer: &Peer,
        id: &IdPayload,
        payloads: &[Payload],
    ) -> Result<Vec<u8>, PeerKeyError> {
        if let Credentials::RsaSig {
            peer_public_key: Some(k),
            ..
        } = &peer.credentials
        {
            return Ok(k.clone());
        }
        let certs: Vec<&[u8]> = payloads
            .iter()
            .filter_map(|p| match p {
                Payload::Cert(c) if c.encoding == cert_encoding::X509_SIGNATURE => {
                    Some(c.data.as_slice())
                }
                _ => None,
            })
            .collect();
        let other_encodings: Vec<u8> = payloads
            .iter()
            .filter_map(|p| match p {
                Payload::Cert(c) if c.encoding != cert_encoding::X509_SIGNATURE => Some(c.encoding),
                _ => None,
            })
            .collect();
        let material = &self.ctx.cfg.policy.x509;
        let verified = match certs.split_first() {
            Some((leaf, chain)) => x509::verify_peer(leaf, chain, &id.identity, material, None)
                .map_err(PeerKeyError::Sent)?,
            None => {
                let held = material.held_for(&id.identity);
                let Some(cert) = held.first() else {
                    return Err(PeerKeyError::None {
                        other_encodings,
                        identity: x509::describe_identity(&id.identity),
                    });
                };
                x509::verify_peer(cert, &[], &id.identity, material, None)
                    .map_err(PeerKeyError::Held)?
            }
        };
        self.ctx.log(
            LogLevel::Info,
            format!(
                "peer {}: certificate \"{}\" (issuer \"{}\") verified for {}",
                peer.name,
                verified.subject,
                verified.issuer,
                x509::describe_identity(&id.identity)
            ),
        );
        Ok(verified.public_key)
    }

    /// Our authentication payload: HASH for a pre-shared key, SIG (signed by a helper) for RSA;
    /// `then` gets the payload.
    pub(in crate::engine) fn own_auth(&mut self, serial: IsakmpSerial, then: AuthReady) {
        let Some(p1) = self.phase1.get(&serial) else {
            return;
        };
        let Some(hash) = p1.own_hash() else {
            return;
        };
        let Some(c) = &p1.chosen else { return };
        // HASH_I/HASH_R are outputs of the negotiated prf; the helper signs nothing else.
        let prf = c.transform.hash;
        match c.transform.auth {
            AuthMethod::PreShared => self.auth_ready(serial, then, vec![Payload::Hash(hash)]),
            AuthMethod::RsaSig => {
                let Some(peer) = self.peer_by_name(&p1.peer) else {
                    return;
                };
                // Our certificate goes before the signature, as RFC 2409 5.1 lists them.
                let cert: Vec<Payload> = self
                    .own_cert(&peer)
                    .map(|c| {
                        Payload::Cert(CertPayload {
                            encoding: cert_encoding::X509_SIGNATURE,
                            data: c.to_vec(),
                        })
                    })
                    .into_iter()
                    .collect();
                let Credentials::RsaSig { secret, .. } = peer.credentials else {
                    return self.p1_fail(serial, "peer has no RSA key configured".into());
                };
                self.crypto(
                    CryptoRequest::RsaSign { secret, prf, hash },
                    CryptoPending::P1Signed { serial, cert, then },
                );
            }
        }
    }

    /// Our signature came: it follows our certificate.
    pub(in crate::engine) fn p1_signed(
        &mut self,
        serial: IsakmpSerial,
        cert: Vec<Payload>,
        r: CryptoResult,
        then: AuthReady,
    ) {
        match r {
            CryptoResult::Signature(s) => {
                let mut out = cert;
                out.push(Payload::Sig(s));
                self.auth_ready(serial, then, out)
            }
            other => self.p1_fail(
                serial,
                format!("signing failed: {}", crate::engine::why(&other)),
            ),
        }
    }

    /// The peer did not authenticate. A responder says so (encrypted, so that only the real
    /// initiator can read it) so the initiator gives up at once instead of timing out.
    pub(in crate::engine) fn p1_auth_failed(&mut self, serial: IsakmpSerial) {
        if self
            .phase1
            .get(&serial)
            .is_some_and(|p| p.role == Role::Responder && p.keys.is_some())
        {
            let spi = self
                .phase1
                .get(&serial)
                .map(|p| [p.icookie.0, p.rcookie.0].concat())
                .unwrap_or_default();
            self.info_notify(
                serial,
                NotifyType::AUTHENTICATION_FAILED,
                ProtocolId::ISAKMP,
                spi,
            );
        }
        self.p1_fail(serial, "authentication failed".into());
    }

    /// Check the peer's ID and authentication payloads; `then` runs if they are good.
    pub(in crate::engine) fn check_peer_auth(
        &mut self,
        serial: IsakmpSerial,
        payloads: &[Payload],
        id_body: Vec<u8>,
        then: PeerAuthenticated,
    ) {
        let Some(p1) = self.phase1.get(&serial) else {
            return;
        };
        let Some(peer) = self.peer_by_name(&p1.peer) else {
            return;
        };
        let Some(c) = p1.chosen.clone() else { return };
        let Some(id) = payloads.iter().find_map(|p| match p {
            Payload::Id(i) => Some(i.clone()),
            _ => None,
        }) else {
            return self.p1_fail(serial, "peer sent no identity".into());
        };
        if let Some(expected) = &peer.remote_id {
            if !x509::identities_match(expected, &id.identity) {
                return self.p1_fail(
                    serial,
                    format!(
                        "peer {} claims identity {}, configured Remote-ID is {}",
                        peer.name,
                        x509::describe_identity(&id.identity),
                        x509::describe_identity(expected)
                    ),
                );
            }
        }
        let initial_contact = payloads.iter().any(
            |p| matches!(p, Payload::Notify(n) if n.notify_type == NotifyType::INITIAL_CONTACT),
        );
        let Some(p1) = self.phase1.get_mut(&serial) else {
            return;
        };
        let Some(hs) = p1.hs() else {
            return;
        };
        hs.id_peer_b = id_body;
        p1.id_peer = Some(id.clone());
        p1.initial_contact |= initial_contact;
        let Some(expected) = p1.peer_hash() else {
            return;
        };
        match c.transform.auth {
            AuthMethod::PreShared => {
                let got = payloads.iter().find_map(|p| match p {
                    Payload::Hash(h) => Some(h.clone()),
                    _ => None,
                });
                if got
                    .as_deref()
                    .is_some_and(|g| crate::engine::protect::ct_eq(g, &expected))
                {
                    self.peer_authenticated(serial, then);
                } else {
                    self.ctx.log(
                        LogLevel::Warning,
                        format!("phase 1 authentication of {} failed: HASH mismatch (wrong pre-shared key?)", peer.name),
                    );
                    self.p1_auth_failed(serial);
                }
            }
            AuthMethod::RsaSig => {
                let Some(sig) = payloads.iter().find_map(|p| match p {
                    Payload::Sig(s) => Some(s.clone()),
                    _ => None,
                }) else {
                    return self.p1_fail(serial, "peer sent no signature".into());
                };
                let public_key = match self
                    .peer_public_key(&peer, &id, payloads)
                    .and_then(|k| self.usable_rsa_key(k))
                {
                    Ok(k) => k,
                    Err(why) => {
                        self.ctx.log(
                            LogLevel::Warning,
                            format!("phase 1 authentication of {} failed: {why}", peer.name),
                        );
                        return self.p1_auth_failed(serial);
                    }
                };
                self.crypto(
                    CryptoRequest::RsaVerify {
                        public_key,
                        hash: expected,
                        sig,
                    },
                    CryptoPending::P1Verified {
                        serial,
                        peer: peer.name.clone(),
                        then,
                    },
                );
            }
        }
    }

    /// The helper's verdict on the peer's signature came.
    pub(in crate::engine) fn p1_verified(
        &mut self,
        serial: IsakmpSerial,
        peer: &str,
        r: CryptoResult,
        then: PeerAuthenticated,
    ) {
        match r {
            CryptoResult::Verified(true) => self.peer_authenticated(serial, then),
            other => {
                self.ctx.log(
                    LogLevel::Warning,
                    format!(
                        "RSA signature of peer {peer} is not valid: {}",
                        crate::engine::why(&other)
                    ),
                );
                self.p1_auth_failed(serial);
            }
        }
    }
}

impl Phase1 {
    /// What the peer's vendor IDs announce: NAT-T (taken only when `nat_t`, our peer
    /// section's NAT-T, allows it) and DPD.
    pub(in crate::engine) fn note_vendor_ids(&mut self, payloads: &[Payload], nat_t: bool) {
        for p in payloads {
            if let Payload::VendorId(v) = p {
                if let Some(ver) = NatTVersion::from_vid(v).filter(|_| nat_t) {
                    // Prefer the RFC dialect when the peer announces both.
                    if self.natt != Some(NatTVersion::Rfc3947) {
                        self.natt = Some(ver);
                    }
                }
                if v.as_slice() == VID_DPD {
                    self.peer_dpd = true;
                }
            }
        }
    }
}

pub(in crate::engine) fn vendor_ids(peer: &Peer) -> Vec<Payload> {
    let mut v = Vec::new();
    if peer.nat_t {
        v.push(Payload::VendorId(VID_RFC3947.to_vec()));
        v.push(Payload::VendorId(VID_DRAFT_02N.to_vec()));
    }
    v.push(Payload::VendorId(VID_DPD.to_vec()));
    v
}
