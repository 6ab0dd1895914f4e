//! Quick Mode initiator (RFC 2409 5.5): message 1 (with PFS), the check of message 2, the
//! inbound SAs in the kernel before message 3 goes.

use super::*;

impl Engine {
    /// Initiator: the PFS key pair came; send message 1.
    pub(in crate::engine) fn qm_i1_keygen(
        &mut self,
        serial: IsakmpSerial,
        msgid: u32,
        r: CryptoResult,
    ) {
        if let Some(QmStage::IPreparing { dh, ke_own, .. }) =
            self.quick.get_mut(&(serial, msgid)).map(|q| &mut q.stage)
        {
            match r {
                CryptoResult::DhKeyPair { public, private } => {
                    *ke_own = public;
                    *dh = Some(private);
                }
                other => {
                    return self.qm_fail(
                        serial,
                        msgid,
                        format!("PFS key generation failed: {}", crate::engine::why(&other)),
                    )
                }
            }
        }
        self.qm_i1_send(serial, msgid);
    }

    pub(in crate::engine) fn qm_i1_send(&mut self, serial: IsakmpSerial, msgid: u32) {
        let Some(keys) = self.p1_keys(serial) else {
            return;
        };
        let udp = self.udp_encap(serial);
        let ni = self.ctx.random_bytes(NONCE_LEN);
        let Some(qm) = self.quick.get_mut(&(serial, msgid)) else {
            return;
        };
        let Some(conn) = self
            .ctx
            .cfg
            .policy
            .connections
            .iter()
            .find(|c| c.name == qm.connection)
        else {
            return;
        };
        let QmStage::IPreparing {
            spis, dh, ke_own, ..
        } = &mut qm.stage
        else {
            return;
        };
        let (spis, dh, ke_own) = (std::mem::take(spis), dh.take(), std::mem::take(ke_own));
        let offer = policy::phase2_sa(
            conn,
            |_, proto| {
                spis.iter()
                    .find(|(p, _)| *p == proto)
                    .map_or([0; 4], |(_, s)| s.to_be_bytes())
            },
            udp,
        );
        let mut rest = vec![Payload::Sa(offer), Payload::Nonce(ni.clone())];
        if !ke_own.is_empty() {
            rest.push(Payload::Ke(ke_own));
        }
        if let (Some(a), Some(b)) = (&qm.idci, &qm.idcr) {
            rest.push(Payload::Id(a.clone()));
            rest.push(Payload::Id(b.clone()));
        }
        let transport = conn
            .suites
            .iter()
            .flat_map(|s| &s.protocols)
            .flat_map(|p| &p.transforms)
            .any(|t| t.encap == EncapMode::Transport);
        if let (Some(rfc), true, Some(p1)) = (udp, transport, self.phase1.get(&serial)) {
            rest.extend(nat_oa(p1.local.ip(), p1.remote.ip(), !rfc));
        }
        qm.stage = QmStage::IOffered { spis, ni_b: ni, dh };
        qm.iv = phase2_iv(keys.prf, keys.encr.block_len(), &keys.iv, msgid);
        let rest_bytes = match chain(&rest) {
            Ok((_, b)) => b,
            Err(e) => return self.qm_fail(serial, msgid, format!("cannot build message 1: {e}")),
        };
        let h = qm_hash1(keys.prf, &keys.skeyid_a, msgid, &rest_bytes);
        let mut payloads = vec![Payload::Hash(h)];
        payloads.extend(rest);
        self.qm_send(serial, msgid, &keys, payloads, true);
    }

    #[allow(clippy::too_many_arguments)]
    pub(in crate::engine) fn qm_i_r1(
        &mut self,
        serial: IsakmpSerial,
        msgid: u32,
        header: &Header,
        bytes: &[u8],
        keys: &P1Keys,
        iv: Vec<u8>,
        digest: Vec<u8>,
    ) {
        let ni = match self.quick.get(&(serial, msgid)).map(|q| &q.stage) {
            Some(QmStage::IOffered { ni_b, .. }) => ni_b.clone(),
            _ => return,
        };
        let Some((payloads, next_iv)) = self.qm_open(header, bytes, keys, &iv, |rest| {
            qm_hash2(keys.prf, &keys.skeyid_a, msgid, &ni, rest)
        }) else {
            return;
        };
        let Some(gateways) = self.phase1.get(&serial).map(|p| Gateways {
            local: p.local.ip(),
            remote: p.remote.ip(),
            nat_local: p.nat_local,
            nat_remote: p.nat_remote,
        }) else {
            return;
        };
        let remote = self.phase1.get(&serial).map(|p| p.remote);
        let Some(qm) = self.quick.get_mut(&(serial, msgid)) else {
            return;
        };
        let Some(conn) = self
            .ctx
            .cfg
            .policy
            .connections
            .iter()
            .find(|c| c.name == qm.connection)
            .cloned()
        else {
            return;
        };
        let Some(Payload::Sa(reply)) = payloads.get(1) else {
            return self.ctx.log(
                LogLevel::Notice,
                "Quick Mode reply: SA must follow HASH(2)".into(),
            );
        };
        let mut chosen = match policy::accept_phase2_reply(reply, &conn) {
            Ok(c) => c,
            Err(m) => {
                return self.qm_fail(
                    serial,
                    msgid,
                    format!("responder chose what we did not offer: {m}"),
                )
            }
        };
        let Some(nr) = find_nonce(&payloads).map(<[u8]>::to_vec) else {
            return self
                .ctx
                .log(LogLevel::Notice, "Quick Mode reply has no nonce".into());
        };
        if self.ctx.nonce_refused(remote, &nr) {
            return;
        }
        let ke = find_ke(&payloads).map(<[u8]>::to_vec);
        let ids: Vec<&IdPayload> = payloads
            .iter()
            .filter_map(|p| {
                if let Payload::Id(i) = p {
                    Some(i)
                } else {
                    None
                }
            })
            .collect();
        let ids_ok = match (ids.as_slice(), &qm.idci, &qm.idcr) {
            ([], None, None) => true,
            ([a, b], Some(ci), Some(cr)) => *a == ci && *b == cr,
            // We sent none (the gateways are the clients); a responder may name them
            // anyway, as strongSwan does with NAT-T: that changes nothing.
            ([a, b], None, None) => gateway_ids(a, b, &gateways),
            _ => false,
        };
        if !ids_ok {
            return self.qm_fail(serial, msgid, "responder changed the client IDs".into());
        }
        for p in &payloads {
            if let Payload::Notify(n) = p {
                if n.notify_type == NotifyType::RESPONDER_LIFETIME {
                    for what in apply_responder_lifetime(&mut chosen.lifetime, &n.data) {
                        self.ctx.log(
                            LogLevel::Notice,
                            format!("RESPONDER-LIFETIME with {what} ignored (it would install an SA without a limit)"),
                        );
                    }
                }
            }
        }
        let QmStage::IOffered { spis, ni_b, dh } = &mut qm.stage else {
            return;
        };
        let pfs_group = chosen.pfs_group;
        let (spis, ni_b, dh) = (std::mem::take(spis), std::mem::take(ni_b), dh.take());
        qm.stage = QmStage::IComputing(Box::new(Agreement {
            chosen,
            spis,
            ni_b,
            nr_b: nr,
            gqm: None,
        }));
        qm.iv = next_iv;
        qm.last_received = digest;
        qm.step += 1;
        match (pfs_group, ke, dh) {
            (Some(group), Some(peer_public), Some(private)) => {
                self.qm_pfs_derive(serial, msgid, group, private, peer_public, QmShared::I3Send)
            }
            (None, None, _) => self.qm_i3_send(serial, msgid),
            _ => self.qm_fail(
                serial,
                msgid,
                "responder's KE does not match the PFS we proposed".into(),
            ),
        }
    }

    pub(in crate::engine) fn qm_i3_send(&mut self, serial: IsakmpSerial, msgid: u32) {
        let done = self.qm_advance(serial, msgid, |stage| match stage {
            QmStage::IComputing(agreement) => Ok(QmStage::IDone {
                agreement,
                inbound_pending: 0,
            }),
            other => Err(other),
        });
        if !done {
            return;
        }
        // Our new inbound SA must be in the kernel before the peer hears message 3: the
        // peer installs its outbound SA then and may send on it at once. The message goes
        // when the kernel has confirmed them all (or refused: that is logged, and the
        // exchange still completes, as it does for every other SA).
        let inbound = self.qm_sa_requests(serial, msgid, &[Direction::Inbound]);
        if let Some(QmStage::IDone {
            inbound_pending, ..
        }) = self.quick.get_mut(&(serial, msgid)).map(|q| &mut q.stage)
        {
            *inbound_pending = inbound.len();
        }
        if inbound.is_empty() {
            return self.qm_i3_finish(serial, msgid);
        }
        for request in inbound {
            self.ctx
                .kernel_then(request, KernelPending::QmInboundInstalled { serial, msgid });
        }
    }

    pub(in crate::engine) fn qm_inbound_installed(
        &mut self,
        serial: IsakmpSerial,
        msgid: u32,
        answer: KernelAnswer,
    ) {
        if let KernelAnswer::Failed(reason) = answer {
            self.ctx
                .log(LogLevel::Error, format!("kernel request failed: {reason}"));
        }
        let Some(QmStage::IDone {
            inbound_pending, ..
        }) = self.quick.get_mut(&(serial, msgid)).map(|q| &mut q.stage)
        else {
            return;
        };
        *inbound_pending = inbound_pending.saturating_sub(1);
        if *inbound_pending == 0 {
            self.qm_i3_finish(serial, msgid);
        }
    }

    pub(in crate::engine) fn qm_i3_finish(&mut self, serial: IsakmpSerial, msgid: u32) {
        let Some(keys) = self.p1_keys(serial) else {
            return;
        };
        let Some(qm) = self.quick.get(&(serial, msgid)) else {
            return;
        };
        let Some(a) = qm.stage.agreement() else {
            return;
        };
        let h = qm_hash3(keys.prf, &keys.skeyid_a, msgid, &a.ni_b, &a.nr_b);
        let connection = qm.connection.clone();
        self.qm_send(serial, msgid, &keys, vec![Payload::Hash(h)], false);
        // A rekey: the peer installs its inbound SA only when message 3 arrives (strongSwan
        // and pluto as responders do), and the kernel sends on the newest outbound SA at
        // once. The old pair stays valid meanwhile, so keep sending on it a moment longer
        // instead of losing the first packets under the new SPI.
        let rekey = self
            .ipsec
            .values()
            .any(|sa| sa.connection == connection && !sa.replaced);
        if rekey {
            self.ctx.timers.add(
                self.ctx.now + OUTBOUND_SWITCH_DELAY,
                Timer::QmOutbound { serial, msgid },
            );
        } else {
            self.qm_install(serial, msgid, &[Direction::Outbound]);
        }
        self.qm_established(serial, msgid);
    }
}
