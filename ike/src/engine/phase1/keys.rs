//! Phase 1 keying: our DH key pair, g^xy, SKEYID (from a helper for a pre-shared key),
//! SKEYID_d/a/e and the IV, and the HASH_I/HASH_R each side must show.

use super::*;

impl Engine {
    /// Unpack a DH keygen result, failing the exchange on error.
    pub(in crate::engine) fn keypair(
        &mut self,
        serial: IsakmpSerial,
        r: CryptoResult,
    ) -> Option<(Vec<u8>, DhPrivate)> {
        match r {
            CryptoResult::DhKeyPair { public, private } => Some((public, private)),
            other => {
                self.p1_fail(
                    serial,
                    format!(
                        "Diffie-Hellman key generation failed: {}",
                        crate::engine::why(&other)
                    ),
                );
                None
            }
        }
    }

    /// g^xy, then SKEYID (from the helper for a pre-shared key), then SKEYID_d/a/e and the
    /// IV; `then` runs when all are ready.
    pub(in crate::engine) fn derive_keys(&mut self, serial: IsakmpSerial, then: KeysReady) {
        let Some(p1) = self.phase1.get_mut(&serial) else {
            return;
        };
        let Some(c) = &p1.chosen else { return };
        let group = c.transform.group;
        let role = p1.role;
        let Some(hs) = p1.hs() else { return };
        let peer_public = match role {
            Role::Initiator => hs.gxr.clone(),
            Role::Responder => hs.gxi.clone(),
        };
        let Some(private) = hs.dh.take() else { return };
        self.crypto(
            CryptoRequest::DhDerive {
                group,
                private,
                peer_public,
            },
            CryptoPending::P1Shared { serial, then },
        );
    }

    /// g^xy came: SKEYID next, from a helper for a pre-shared key.
    pub(in crate::engine) fn p1_shared(
        &mut self,
        serial: IsakmpSerial,
        r: CryptoResult,
        then: KeysReady,
    ) {
        let gxy = match r {
            CryptoResult::DhShared(s) => s,
            other => {
                return self.p1_fail(
                    serial,
                    format!("Diffie-Hellman failed: {}", crate::engine::why(&other)),
                )
            }
        };
        let peer = self
            .phase1
            .get(&serial)
            .and_then(|p| self.peer_by_name(&p.peer));
        let Some(p1) = self.phase1.get_mut(&serial) else {
            return;
        };
        let Some(c) = &p1.chosen else { return };
        let prf_alg = c.transform.hash;
        let auth = c.transform.auth;
        let Some(hs) = p1.hs() else { return };
        match auth {
            AuthMethod::PreShared => {
                let Some(peer) = peer else { return };
                let Credentials::PreShared { secret } = peer.credentials else {
                    return self.p1_fail(serial, "peer has no pre-shared key configured".into());
                };
                let (ni_b, nr_b) = (hs.ni_b.clone(), hs.nr_b.clone());
                hs.gxy = Some(gxy);
                self.crypto(
                    CryptoRequest::SkeyidPsk {
                        prf: prf_alg,
                        secret,
                        ni_b,
                        nr_b,
                    },
                    CryptoPending::P1Skeyid { serial, then },
                );
            }
            AuthMethod::RsaSig => {
                let skeyid = skeyid_sig(prf_alg, &hs.ni_b, &hs.nr_b, &gxy);
                hs.gxy = Some(gxy);
                self.finish_keys(serial, skeyid, then);
            }
        }
    }

    /// SKEYID from the pre-shared key came.
    pub(in crate::engine) fn p1_skeyid(
        &mut self,
        serial: IsakmpSerial,
        r: CryptoResult,
        then: KeysReady,
    ) {
        match r {
            CryptoResult::Skeyid(s) => self.finish_keys(serial, s, then),
            other => self.p1_fail(
                serial,
                format!("SKEYID computation failed: {}", crate::engine::why(&other)),
            ),
        }
    }

    pub(in crate::engine) fn finish_keys(
        &mut self,
        serial: IsakmpSerial,
        skeyid: Secret,
        then: KeysReady,
    ) {
        let Some(p1) = self.phase1.get_mut(&serial) else {
            return;
        };
        let (Some(c), Some(hs)) = (&p1.chosen, p1.hs_ref()) else {
            return;
        };
        let Some(gxy) = &hs.gxy else { return };
        let keys = phase1_keys(
            c.transform.hash,
            c.transform.hash,
            c.transform.encr,
            skeyid.clone(),
            gxy,
            &p1.icookie.0,
            &p1.rcookie.0,
            &hs.gxi,
            &hs.gxr,
        );
        p1.iv = keys.iv.clone();
        p1.keys = Some(keys);
        if let Some(hs) = p1.hs() {
            hs.skeyid = Some(skeyid);
        }
        self.keys_ready(serial, then);
        // A message that arrived while we computed can be handled now.
        let deferred = self
            .phase1
            .get_mut(&serial)
            .and_then(|p| p.hs())
            .and_then(|hs| hs.deferred.take());
        if let Some((local, remote, bytes)) = deferred {
            if let Ok(h) = Header::parse(&bytes) {
                self.phase1_datagram(local, remote, &h, &bytes);
            }
        }
    }
}

impl Phase1 {
    /// HASH_I or HASH_R of our side.
    pub(in crate::engine) fn own_hash(&self) -> Option<Vec<u8>> {
        let (c, hs) = (self.chosen.as_ref()?, self.hs_ref()?);
        let skeyid = hs.skeyid.as_ref()?;
        let h = c.transform.hash;
        Some(match self.role {
            Role::Initiator => hash_i(
                h,
                skeyid,
                &hs.gxi,
                &hs.gxr,
                &self.icookie.0,
                &self.rcookie.0,
                &hs.sai_b,
                &hs.id_own_b,
            ),
            Role::Responder => hash_r(
                h,
                skeyid,
                &hs.gxr,
                &hs.gxi,
                &self.rcookie.0,
                &self.icookie.0,
                &hs.sai_b,
                &hs.id_own_b,
            ),
        })
    }

    /// The hash the peer must have sent.
    pub(in crate::engine) fn peer_hash(&self) -> Option<Vec<u8>> {
        let (c, hs) = (self.chosen.as_ref()?, self.hs_ref()?);
        let skeyid = hs.skeyid.as_ref()?;
        let h = c.transform.hash;
        Some(match self.role {
            Role::Initiator => hash_r(
                h,
                skeyid,
                &hs.gxr,
                &hs.gxi,
                &self.rcookie.0,
                &self.icookie.0,
                &hs.sai_b,
                &hs.id_peer_b,
            ),
            Role::Responder => hash_i(
                h,
                skeyid,
                &hs.gxi,
                &hs.gxr,
                &self.icookie.0,
                &self.rcookie.0,
                &hs.sai_b,
                &hs.id_peer_b,
            ),
        })
    }
}
