//! Quick Mode responder (RFC 2409 5.5): the check of message 1 against the policy, message
//! 2 (with PFS), and message 3.

use super::*;

impl Engine {
    /// Refuse a Quick Mode's client IDs: INVALID-ID-INFORMATION to the peer, `why` logged.
    fn qm_invalid_ids(&mut self, serial: IsakmpSerial, peer: &str, why: String) {
        self.info_notify(
            serial,
            NotifyType::INVALID_ID_INFORMATION,
            ProtocolId::ISAKMP,
            Vec::new(),
        );
        self.ctx
            .log(LogLevel::Notice, format!("Quick Mode from {peer}: {why}"));
    }

    #[allow(clippy::too_many_arguments)]
    pub(in crate::engine) fn qm_r_i1(
        &mut self,
        serial: IsakmpSerial,
        msgid: u32,
        header: &Header,
        bytes: &[u8],
        keys: &P1Keys,
        iv: Vec<u8>,
        digest: Vec<u8>,
    ) {
        let Some((payloads, next_iv)) = self.qm_open(header, bytes, keys, &iv, |rest| {
            qm_hash1(keys.prf, &keys.skeyid_a, msgid, rest)
        }) else {
            return;
        };
        let Some(p1) = self.phase1.get_mut(&serial) else {
            return;
        };
        p1.seen_msgids.insert(msgid);
        p1.last_heard = self.ctx.now;
        let peer = p1.peer.clone();
        let (local, remote) = (p1.local.ip(), p1.remote.ip());
        let Some(Payload::Sa(offer)) = payloads.get(1) else {
            return self.ctx.log(
                LogLevel::Notice,
                format!("Quick Mode from {peer}: SA must follow HASH(1)"),
            );
        };
        let Some(ni) = find_nonce(&payloads).map(<[u8]>::to_vec) else {
            return self.ctx.log(
                LogLevel::Notice,
                format!("Quick Mode from {peer}: no nonce"),
            );
        };
        if self.nonce_refused(serial, &ni) {
            return;
        }
        let ke = find_ke(&payloads).map(<[u8]>::to_vec);
        let ids: Vec<IdPayload> = payloads
            .iter()
            .filter_map(|p| {
                if let Payload::Id(i) = p {
                    Some(i.clone())
                } else {
                    None
                }
            })
            .collect();
        let (idci, idcr) = match ids.as_slice() {
            [] => (None, None),
            [a, b] => (Some(a.clone()), Some(b.clone())),
            _ => {
                let why = format!("{} ID payloads (need 0 or 2)", ids.len());
                return self.qm_invalid_ids(serial, &peer, why);
            }
        };
        // A netmask with holes (255.0.255.0) has no prefix; read as one it would widen the
        // selector, so such an ID is refused.
        if let Some(bad) = [&idci, &idcr]
            .into_iter()
            .flatten()
            .find(|id| !contiguous_mask(id))
        {
            let why = format!(
                "client ID {} has a non-contiguous netmask: refused",
                describe_id_raw(bad)
            );
            return self.qm_invalid_ids(serial, &peer, why);
        }
        // With no IDs, the selectors are the two hosts.
        let (sel_ci, sel_cr) = (
            idci.clone().unwrap_or_else(|| host_id(remote)),
            idcr.clone().unwrap_or_else(|| host_id(local)),
        );
        let Some(conn) = self
            .ctx
            .cfg
            .policy
            .connection_for_ids(&peer, Some(&sel_ci), Some(&sel_cr))
            .cloned()
        else {
            self.ctx.log(
                LogLevel::Warning,
                format!(
                    "Quick Mode from {peer}: no connection matches {} <=> {}",
                    describe_id(&sel_ci),
                    describe_id(&sel_cr)
                ),
            );
            self.info_notify(
                serial,
                NotifyType::INVALID_ID_INFORMATION,
                ProtocolId::ISAKMP,
                Vec::new(),
            );
            return;
        };
        let chosen = match self.ctx.cfg.policy.choose_phase2_for(&conn, offer) {
            Ok(c) => c,
            Err(m) => {
                self.ctx.log(
                    LogLevel::Warning,
                    format!("Quick Mode for {} from {peer}: {m}", conn.name),
                );
                self.info_notify(
                    serial,
                    NotifyType::NO_PROPOSAL_CHOSEN,
                    ProtocolId::ISAKMP,
                    Vec::new(),
                );
                return;
            }
        };
        if chosen.pfs_group.is_some() != ke.is_some() {
            self.ctx.log(
                LogLevel::Warning,
                format!(
                    "Quick Mode for {} from {peer}: KE payload does not match PFS of the proposal",
                    conn.name
                ),
            );
            self.info_notify(
                serial,
                NotifyType::INVALID_KEY_INFORMATION,
                ProtocolId::ISAKMP,
                Vec::new(),
            );
            return;
        }
        let protocols: Vec<IpsecProtocol> = chosen.protocols.iter().map(|p| p.protocol).collect();
        let accepted = Accepted {
            offer: offer.clone(),
            responder_lifetime: chosen.responder_lifetime,
            chosen,
            ni_b: ni,
            ke_peer: ke.unwrap_or_default(),
            ke_own: Vec::new(),
            gqm: None,
            spis: Vec::new(),
            spis_wanted: protocols.len(),
        };
        let stage = QmStage::RPreparing(Box::new(accepted));
        let mut qm = QuickMode::new(msgid, conn.name.clone(), (idci, idcr), stage);
        qm.iv = next_iv;
        qm.last_received = digest;
        self.qm_begin(serial, qm, protocols, local, remote);
    }

    /// Responder: SPIs are known; do PFS if asked, then answer.
    pub(in crate::engine) fn qm_r1_prepare(&mut self, serial: IsakmpSerial, msgid: u32) {
        let Some(QmStage::RPreparing(a)) = self.quick.get(&(serial, msgid)).map(|q| &q.stage)
        else {
            return;
        };
        match a.chosen.pfs_group {
            Some(group) => {
                let peer_public = a.ke_peer.clone();
                self.crypto(
                    CryptoRequest::DhKeygen { group },
                    CryptoPending::QmR1Keygen {
                        serial,
                        msgid,
                        group,
                        peer_public,
                    },
                );
            }
            None => self.qm_r1_send(serial, msgid),
        }
    }

    /// Responder: the PFS key pair came; g^xy next.
    pub(in crate::engine) fn qm_r1_keygen(
        &mut self,
        serial: IsakmpSerial,
        msgid: u32,
        group: Group,
        peer_public: Vec<u8>,
        r: CryptoResult,
    ) {
        let (public, private) = match r {
            CryptoResult::DhKeyPair { public, private } => (public, private),
            other => {
                return self.qm_fail(
                    serial,
                    msgid,
                    format!("PFS key generation failed: {}", crate::engine::why(&other)),
                )
            }
        };
        if let Some(QmStage::RPreparing(a)) =
            self.quick.get_mut(&(serial, msgid)).map(|q| &mut q.stage)
        {
            a.ke_own = public;
        }
        self.qm_pfs_derive(serial, msgid, group, private, peer_public, QmShared::R2Send);
    }

    pub(in crate::engine) fn qm_r1_send(&mut self, serial: IsakmpSerial, msgid: u32) {
        let Some(keys) = self.p1_keys(serial) else {
            return;
        };
        let nr = self.ctx.random_bytes(NONCE_LEN);
        let Some(qm) = self.quick.get(&(serial, msgid)) else {
            return;
        };
        let QmStage::RPreparing(a) = &qm.stage else {
            return;
        };
        let chosen = &a.chosen;
        let reply = policy::phase2_reply_sa(&a.offer, chosen, |proto| {
            a.spis
                .iter()
                .find(|(p, _)| *p == proto)
                .map_or([0; 4], |(_, s)| s.to_be_bytes())
        });
        let Some(reply) = reply else {
            return self.qm_fail(serial, msgid, "cannot build the reply SA".into());
        };
        let mut rest = vec![Payload::Sa(reply), Payload::Nonce(nr.clone())];
        if !a.ke_own.is_empty() {
            rest.push(Payload::Ke(a.ke_own.clone()));
        }
        if let (Some(a), Some(b)) = (&qm.idci, &qm.idcr) {
            rest.push(Payload::Id(a.clone()));
            rest.push(Payload::Id(b.clone()));
        }
        if a.responder_lifetime {
            // RFC 2407 4.6.3.1: tell the initiator the lifetime we hold it to.
            for cp in &chosen.protocols {
                let data = lifetime_attributes(&chosen.lifetime);
                rest.push(Payload::Notify(NotifyPayload {
                    doi: DOI_IPSEC,
                    protocol: protocol_id(cp.protocol),
                    spi: cp.peer_spi.to_vec(),
                    notify_type: NotifyType::RESPONDER_LIFETIME,
                    data,
                }));
            }
        }
        let rest_bytes = match chain(&rest) {
            Ok((_, b)) => b,
            Err(e) => return self.qm_fail(serial, msgid, format!("cannot build message 2: {e}")),
        };
        let h = qm_hash2(keys.prf, &keys.skeyid_a, msgid, &a.ni_b, &rest_bytes);
        let mut payloads = vec![Payload::Hash(h)];
        payloads.extend(rest);
        // The exchange is settled: what message 1 offered is no longer needed.
        self.qm_advance(serial, msgid, |stage| match stage {
            QmStage::RPreparing(a) => Ok(QmStage::RAnswered(Box::new(Agreement {
                chosen: a.chosen,
                spis: a.spis,
                ni_b: a.ni_b,
                nr_b: nr,
                gqm: a.gqm,
            }))),
            other => Err(other),
        });
        // Retransmitted until HASH(3) arrives: a lost message 3 would otherwise leave us
        // without outbound SAs while the initiator believes all is done.
        self.qm_send(serial, msgid, &keys, payloads, true);
        // Inbound SAs go in now, so traffic the initiator sends right after message 3
        // is not lost if message 3 is late.
        self.qm_install(serial, msgid, &[Direction::Inbound]);
    }

    #[allow(clippy::too_many_arguments)]
    pub(in crate::engine) fn qm_r_i2(
        &mut self,
        serial: IsakmpSerial,
        msgid: u32,
        header: &Header,
        bytes: &[u8],
        keys: &P1Keys,
        iv: Vec<u8>,
        digest: Vec<u8>,
    ) {
        let (ni, nr) = match self.quick.get(&(serial, msgid)).map(|q| &q.stage) {
            Some(QmStage::RAnswered(a)) => (a.ni_b.clone(), a.nr_b.clone()),
            _ => return,
        };
        let want = qm_hash3(keys.prf, &keys.skeyid_a, msgid, &ni, &nr);
        let (pt, next_iv) = match open(bytes, keys.encr, &keys.enc_key, &iv) {
            Ok(v) => {
                let (local, remote) = self.p1_addresses(header);
                self.ctx
                    .capture(remote, local, crate::engine::protect::view(bytes, &v.0));
                v
            }
            Err(e) => {
                return self.ctx.log(
                    LogLevel::Notice,
                    format!("cannot decrypt Quick Mode message 3: {e}"),
                )
            }
        };
        let ok = match parse_all(header.next_payload, &pt, true) {
            Ok((_, p)) => {
                matches!(p.first(), Some(Payload::Hash(h)) if crate::engine::protect::ct_eq(h, &want))
            }
            Err(_) => false,
        };
        if !ok {
            return self.ctx.log(
                LogLevel::Warning,
                "Quick Mode message 3 failed its HASH(3) check: dropped".into(),
            );
        }
        let done = self.qm_advance(serial, msgid, |stage| match stage {
            QmStage::RAnswered(a) => Ok(QmStage::RDone(a)),
            other => Err(other),
        });
        let Some(qm) = self.quick.get_mut(&(serial, msgid)).filter(|_| done) else {
            return;
        };
        qm.iv = next_iv;
        qm.last_received = digest;
        self.qm_install(serial, msgid, &[Direction::Outbound]);
        self.qm_established(serial, msgid);
    }
}

/// Whether a subnet ID's mask is a run of ones then zeros (anything else has no prefix).
fn contiguous_mask(id: &IdPayload) -> bool {
    match &id.identity {
        Identity::Ipv4Subnet(_, m) => {
            let m = u32::from(*m);
            m.leading_ones() + m.trailing_zeros() == 32
        }
        Identity::Ipv6Subnet(_, m) => {
            let m = u128::from(*m);
            m.leading_ones() + m.trailing_zeros() == 128
        }
        _ => true,
    }
}

/// An ID with its mask written out, for the refusal (the prefix form would hide the holes).
fn describe_id_raw(id: &IdPayload) -> String {
    match &id.identity {
        Identity::Ipv4Subnet(a, m) => format!("{a}/{m}"),
        Identity::Ipv6Subnet(a, m) => format!("{a}/{m}"),
        _ => describe_id(id),
    }
}
