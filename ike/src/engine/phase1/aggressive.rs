//! Aggressive Mode (RFC 2409 5.4): the three messages, initiator and responder.

use super::*;

impl Engine {
    pub(in crate::engine) fn am_i1_keygen(
        &mut self,
        serial: IsakmpSerial,
        offer: SaPayload,
        r: CryptoResult,
    ) {
        let Some((public, private)) = self.keypair(serial, r) else {
            return;
        };
        let ni = self.ctx.random_bytes(NONCE_LEN);
        let Some(p1) = self.phase1.get_mut(&serial) else {
            return;
        };
        if !p1.at(P1State::AmI1Wait) {
            return;
        }
        let Some(hs) = p1.hs() else {
            return;
        };
        hs.gxi = public.clone();
        hs.dh = Some(private);
        hs.ni_b = ni.clone();
        p1.set_step(P1State::AmI1Sent);
        let Some((peer, id)) = self.own_id(serial) else {
            return;
        };
        let mut payloads = vec![
            Payload::Sa(offer),
            Payload::Ke(public),
            Payload::Nonce(ni),
            Payload::Id(id),
        ];
        payloads.extend(self.cert_requests(&peer));
        payloads.extend(auth::vendor_ids(&peer));
        self.p1_send_plain(serial, payloads);
    }

    pub(in crate::engine) fn am_r1_keygen(
        &mut self,
        serial: IsakmpSerial,
        reply_sa: SaPayload,
        r: CryptoResult,
    ) {
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
        let Some((_, id)) = self.own_id(serial) else {
            return;
        };
        self.derive_keys(
            serial,
            KeysReady::AmR2Auth {
                reply_sa,
                public,
                nr,
                id,
            },
        );
    }

    pub(in crate::engine) fn am_i_r1(
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
            return self.ctx.log(
                LogLevel::Notice,
                "Aggressive Mode reply has no SA payload".into(),
            );
        };
        let chosen = match policy::accept_phase1_reply(sa, &peer.transforms) {
            Ok(c) => c,
            Err(m) => {
                return self.p1_fail(
                    serial,
                    format!("responder's choice is not one we offered: {m}"),
                )
            }
        };
        let (Some(ke), Some(nonce), Some(id_body)) = (
            find_ke(&payloads),
            find_nonce(&payloads),
            id_body_of(&payloads),
        ) else {
            return self.ctx.log(
                LogLevel::Notice,
                "Aggressive Mode reply lacks KE, nonce or ID".into(),
            );
        };
        if self.nonce_refused(serial, nonce) || self.ke_refused(serial, ke) {
            return;
        }
        let nat_t = self.p1_nat_t(serial);
        let Some(p1) = self.phase1.get_mut(&serial) else {
            return;
        };
        p1.note_vendor_ids(&payloads, nat_t);
        p1.chosen = Some(chosen);
        let Some(hs) = p1.hs() else {
            return;
        };
        hs.gxr = ke.to_vec();
        hs.nr_b = nonce.to_vec();
        p1.last_received = digest;
        p1.set_step(P1State::AmI2Wait);
        p1.retransmit_step += 1;
        self.detect_nat(serial, &payloads);
        self.derive_keys(serial, KeysReady::AmI2Check { payloads, id_body });
    }

    pub(in crate::engine) fn am_r_i2(
        &mut self,
        serial: IsakmpSerial,
        local: SocketAddr,
        remote: SocketAddr,
        header: &Header,
        bytes: &[u8],
        digest: Vec<u8>,
    ) {
        // Some peers encrypt the third message (pluto does); both forms are accepted.
        let parsed = if header.flags & flags::ENCRYPTION != 0 {
            self.p1_decrypt(serial, header, bytes)
                .map(|(p, iv)| (p, Some(iv)))
        } else {
            self.p1_parse(serial, header, bytes).map(|p| (p, None))
        };
        let Some((payloads, iv)) = parsed else { return };
        // The initiator's NAT-D payloads come in this message (RFC 3947 3.2), computed over
        // the addresses it came on.
        self.detect_nat_on(serial, &payloads, local, remote);
        let Some(p1) = self.phase1.get_mut(&serial) else {
            return;
        };
        let id_body = p1
            .hs_ref()
            .map(|hs| hs.id_peer_b.clone())
            .unwrap_or_default();
        let id = p1.id_peer.clone();
        p1.set_step(P1State::AmR2Wait);
        // The IV chain advances with the encrypted message whatever its verdict: a refusal
        // (the authenticated notification check_peer_auth sends) is encrypted after it.
        if let Some(iv) = iv {
            p1.iv = iv;
        }
        // The peer's ID came in message 1; check_peer_auth expects it among the payloads.
        let mut with_id = payloads;
        if let Some(id) = id {
            with_id.push(Payload::Id(id));
        }
        self.check_peer_auth(
            serial,
            &with_id,
            id_body,
            PeerAuthenticated::AmR3Done {
                digest,
                local,
                remote,
            },
        );
    }
}
