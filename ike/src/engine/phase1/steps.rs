//! What each phase-1 exchange does when the answer it waited for arrives: the next step
//! after keys, after the peer's authentication, and with our authentication payloads.

use super::*;

impl Engine {
    /// SKEYID and the keys are ready: the exchange takes its next step.
    pub(in crate::engine) fn keys_ready(&mut self, serial: IsakmpSerial, then: KeysReady) {
        match then {
            KeysReady::MmI5Send => self.mm_i3_send(serial),
            KeysReady::MmR4Sent => {
                if let Some(p1) = self.phase1.get_mut(&serial) {
                    p1.set_step(P1State::MmR2Sent);
                }
            }
            KeysReady::AmR2Auth {
                reply_sa,
                public,
                nr,
                id,
            } => self.own_auth(
                serial,
                AuthReady::AmR2 {
                    reply_sa,
                    public,
                    nr,
                    id,
                },
            ),
            KeysReady::AmI2Check { payloads, id_body } => {
                self.check_peer_auth(serial, &payloads, id_body, PeerAuthenticated::AmI3Auth)
            }
        }
    }

    /// The peer proved who it is: the exchange takes its next step.
    pub(in crate::engine) fn peer_authenticated(
        &mut self,
        serial: IsakmpSerial,
        then: PeerAuthenticated,
    ) {
        match then {
            PeerAuthenticated::MmI6Done { iv, digest } => {
                if let Some(p1) = self.phase1.get_mut(&serial) {
                    p1.iv = iv;
                    p1.last_received = digest;
                }
                self.p1_established(serial);
            }
            PeerAuthenticated::MmR6Answer {
                iv,
                digest,
                local,
                remote,
            } => {
                let Some(p1) = self.phase1.get_mut(&serial) else {
                    return;
                };
                p1.iv = iv;
                p1.last_received = digest;
                p1.local = local;
                p1.remote = remote;
                let Some((_, id)) = self.own_id(serial) else {
                    return;
                };
                self.own_auth(serial, AuthReady::MmR6 { id });
            }
            PeerAuthenticated::AmI3Auth => {
                self.float(serial);
                self.own_auth(serial, AuthReady::AmI3);
            }
            PeerAuthenticated::AmR3Done {
                digest,
                local,
                remote,
            } => {
                if let Some(p1) = self.phase1.get_mut(&serial) {
                    p1.last_received = digest;
                    p1.local = local;
                    p1.remote = remote;
                }
                self.p1_established(serial);
            }
        }
    }

    /// Our authentication payloads are ready: the message that carries them goes out.
    pub(in crate::engine) fn auth_ready(
        &mut self,
        serial: IsakmpSerial,
        then: AuthReady,
        auth: Vec<Payload>,
    ) {
        match then {
            AuthReady::MmI5 { id, first_contact } => {
                let Some(p1) = self.phase1.get_mut(&serial) else {
                    return;
                };
                p1.set_step(P1State::MmI3Sent);
                let mut payloads = vec![Payload::Id(id)];
                payloads.extend(auth);
                if first_contact {
                    payloads.push(initial_contact_notify(p1));
                }
                self.p1_send_sealed(serial, payloads, true);
            }
            AuthReady::MmR6 { id } => {
                let mut out = vec![Payload::Id(id)];
                out.extend(auth);
                self.p1_send_sealed(serial, out, false);
                self.p1_established(serial);
            }
            AuthReady::AmR2 {
                reply_sa,
                public,
                nr,
                id,
            } => {
                let Some(peer) = self
                    .phase1
                    .get(&serial)
                    .and_then(|p| self.peer_by_name(&p.peer))
                else {
                    return;
                };
                let Some(p1) = self.phase1.get_mut(&serial) else {
                    return;
                };
                p1.set_step(P1State::AmR1Sent);
                let h = p1.hash_alg().unwrap_or(HashAlg::Sha1);
                let mut out = vec![
                    Payload::Sa(reply_sa),
                    Payload::Ke(public),
                    Payload::Nonce(nr),
                    Payload::Id(id),
                ];
                out.extend(p1.nat_d_payloads(h));
                out.extend(auth);
                out.extend(self.cert_requests(&peer));
                out.extend(auth::vendor_ids(&peer));
                self.p1_send_plain(serial, out);
            }
            AuthReady::AmI3 => {
                let Some(p1) = self.phase1.get(&serial) else {
                    return;
                };
                let h = p1.hash_alg().unwrap_or(HashAlg::Sha1);
                let mut out = p1.nat_d_payloads(h);
                out.extend(auth);
                // RFC 2409 shows the third message in the clear, but pluto (and racoon,
                // Cisco) encrypt it, and pluto as responder chains its phase 2 IV on an
                // encrypted one: with a clear one, its Quick Mode decrypts to garbage.
                // strongSwan and we as responder take either form.
                self.p1_send_sealed_as(serial, ExchangeType::AGGRESSIVE, out, false);
                if self.phase1.contains_key(&serial) {
                    self.p1_established(serial);
                }
            }
        }
    }
}
