//! Main Mode (RFC 2409 5.1): the six messages, initiator and responder.

use super::*;

impl Engine {
    pub(in crate::engine) fn mm_i_r1(
        &mut self,
        serial: IsakmpSerial,
        header: &Header,
        bytes: &[u8],
        digest: Vec<u8>,
    ) {
        let Some(payloads) = self.p1_parse(serial, header, bytes) else {
            return;
        };
        let Some(p1) = self.phase1.get(&serial) else {
            return;
        };
        let Some(peer) = self.peer_by_name(&p1.peer) else {
            return;
        };
        let Some(Payload::Sa(sa)) = payloads.iter().find(|p| matches!(p, Payload::Sa(_))) else {
            self.ctx.log(
                LogLevel::Notice,
                format!("Main Mode reply from {} has no SA payload", peer.name),
            );
            return;
        };
        let chosen = match policy::accept_phase1_reply(sa, &peer.transforms) {
            Ok(c) => c,
            Err(m) => {
                self.p1_fail(
                    serial,
                    format!("responder's choice is not one we offered: {m}"),
                );
                return;
            }
        };
        let group = chosen.transform.group;
        let nat_t = self.p1_nat_t(serial);
        let Some(p1) = self.phase1.get_mut(&serial) else {
            return;
        };
        p1.note_vendor_ids(&payloads, nat_t);
        p1.chosen = Some(chosen);
        p1.last_received = digest;
        p1.set_step(P1State::MmI2Wait);
        p1.retransmit_step += 1;
        self.crypto(
            CryptoRequest::DhKeygen { group },
            CryptoPending::MmI2Keygen { serial },
        );
    }

    pub(in crate::engine) fn mm_i2_send(&mut self, serial: IsakmpSerial, r: CryptoResult) {
        let Some((public, private)) = self.keypair(serial, r) else {
            return;
        };
        let ni = self.ctx.random_bytes(NONCE_LEN);
        let Some(p1) = self.phase1.get_mut(&serial) else {
            return;
        };
        if !p1.at(P1State::MmI2Wait) {
            return;
        }
        let Some(hs) = p1.hs() else {
            return;
        };
        hs.gxi = public.clone();
        hs.dh = Some(private);
        hs.ni_b = ni.clone();
        p1.set_step(P1State::MmI2Sent);
        let h = p1.hash_alg().unwrap_or(HashAlg::Sha1);
        let mut payloads = vec![Payload::Ke(public), Payload::Nonce(ni)];
        payloads.extend(p1.nat_d_payloads(h));
        let peer = p1.peer.clone();
        if let Some(peer) = self.peer_by_name(&peer) {
            payloads.extend(self.cert_requests_for(serial, &peer));
        }
        self.p1_send_plain(serial, payloads);
    }

    pub(in crate::engine) fn mm_i_r2(
        &mut self,
        serial: IsakmpSerial,
        header: &Header,
        bytes: &[u8],
        digest: Vec<u8>,
    ) {
        let Some(payloads) = self.p1_parse(serial, header, bytes) else {
            return;
        };
        let (Some(ke), Some(nonce)) = (find_ke(&payloads), find_nonce(&payloads)) else {
            self.ctx.log(
                LogLevel::Notice,
                "Main Mode message 4 lacks KE or nonce".into(),
            );
            return;
        };
        if self.nonce_refused(serial, nonce) || self.ke_refused(serial, ke) {
            return;
        }
        let Some(p1) = self.phase1.get_mut(&serial) else {
            return;
        };
        let Some(hs) = p1.hs() else {
            return;
        };
        hs.gxr = ke.to_vec();
        hs.nr_b = nonce.to_vec();
        p1.last_received = digest;
        p1.set_step(P1State::MmI3Wait);
        p1.retransmit_step += 1;
        self.detect_nat(serial, &payloads);
        self.derive_keys(serial, KeysReady::MmI5Send);
    }

    pub(in crate::engine) fn mm_i3_send(&mut self, serial: IsakmpSerial) {
        self.float(serial);
        let Some((peer, id)) = self.own_id(serial) else {
            return;
        };
        let first_contact = !self
            .phase1
            .values()
            .any(|o| o.peer == peer.name && o.is_established());
        self.own_auth(serial, AuthReady::MmI5 { id, first_contact });
    }

    pub(in crate::engine) fn mm_i_r3(
        &mut self,
        serial: IsakmpSerial,
        header: &Header,
        bytes: &[u8],
        digest: Vec<u8>,
    ) {
        let Some((payloads, iv)) = self.p1_decrypt(serial, header, bytes) else {
            return;
        };
        let Some(id_body) = id_body_of(&payloads) else {
            return self.ctx.log(
                LogLevel::Notice,
                "Main Mode message 6 has no ID payload".into(),
            );
        };
        self.check_peer_auth(
            serial,
            &payloads,
            id_body,
            PeerAuthenticated::MmI6Done { iv, digest },
        );
    }

    pub(in crate::engine) fn mm_r_i2(
        &mut self,
        serial: IsakmpSerial,
        header: &Header,
        bytes: &[u8],
        digest: Vec<u8>,
    ) {
        let Some(payloads) = self.p1_parse(serial, header, bytes) else {
            return;
        };
        let (Some(ke), Some(nonce)) = (find_ke(&payloads), find_nonce(&payloads)) else {
            return self.ctx.log(
                LogLevel::Notice,
                "Main Mode message 3 lacks KE or nonce".into(),
            );
        };
        if self.nonce_refused(serial, nonce) || self.ke_refused(serial, ke) {
            return;
        }
        // Message 3 carries our cookie back: the peer sees what we send.
        self.admission.proven(serial);
        let Some(p1) = self.phase1.get_mut(&serial) else {
            return;
        };
        let Some(group) = p1.chosen.as_ref().map(|c| c.transform.group) else {
            return;
        };
        let Some(hs) = p1.hs() else {
            return;
        };
        hs.gxi = ke.to_vec();
        hs.ni_b = nonce.to_vec();
        p1.last_received = digest;
        p1.set_step(P1State::MmR2Wait);
        p1.retransmit_step += 1;
        self.detect_nat(serial, &payloads);
        self.crypto(
            CryptoRequest::DhKeygen { group },
            CryptoPending::MmR2Keygen { serial },
        );
    }

    /// Main Mode responder: our key pair came; send message 4 and derive the keys.
    pub(in crate::engine) fn mm_r2_send(&mut self, serial: IsakmpSerial, r: CryptoResult) {
        let Some((public, private)) = self.keypair(serial, r) else {
            return;
        };
        let nr = self.ctx.random_bytes(NONCE_LEN);
        let Some(p1) = self.phase1.get_mut(&serial) else {
            return;
        };
        let Some(hs) = p1.hs() else {
            return;
        };
        hs.gxr = public.clone();
        hs.dh = Some(private);
        hs.nr_b = nr.clone();
        let h = p1.hash_alg().unwrap_or(HashAlg::Sha1);
        let mut out = vec![Payload::Ke(public), Payload::Nonce(nr)];
        out.extend(p1.nat_d_payloads(h));
        let peer = p1.peer.clone();
        if let Some(peer) = self.peer_by_name(&peer) {
            out.extend(self.cert_requests_for(serial, &peer));
        }
        self.p1_send_plain(serial, out);
        self.derive_keys(serial, KeysReady::MmR4Sent);
    }

    pub(in crate::engine) fn mm_r_i3(
        &mut self,
        serial: IsakmpSerial,
        local: SocketAddr,
        remote: SocketAddr,
        header: &Header,
        bytes: &[u8],
        digest: Vec<u8>,
    ) {
        let Some((payloads, iv)) = self.p1_decrypt(serial, header, bytes) else {
            return;
        };
        let Some(id_body) = id_body_of(&payloads) else {
            return self.ctx.log(
                LogLevel::Notice,
                "Main Mode message 5 has no ID payload".into(),
            );
        };
        if let Some(p1) = self.phase1.get_mut(&serial) {
            p1.set_step(P1State::MmR3Wait);
            // It decrypted and parsed, so the sender holds the keys: from here the IV is
            // the one after message 5, which an AUTHENTICATION-FAILED notify must use too.
            p1.iv = iv.clone();
        }
        self.check_peer_auth(
            serial,
            &payloads,
            id_body,
            PeerAuthenticated::MmR6Answer {
                iv,
                digest,
                local,
                remote,
            },
        );
    }
}
