//! The SAs a Quick Mode exchange puts into the kernel: KEYMAT per direction and protocol,
//! and the reqid that binds a connection's SAs to its policies.

use super::*;

impl Engine {
    /// KEYMAT for each chosen protocol and direction, handed to the kernel.
    pub(in crate::engine) fn qm_install(
        &mut self,
        serial: IsakmpSerial,
        msgid: u32,
        dirs: &[Direction],
    ) {
        for r in self.qm_sa_requests(serial, msgid, dirs) {
            self.ctx.kernel(r);
        }
    }

    /// The `AddSa` requests of exchange (`serial`, `msgid`) for the directions `dirs`.
    pub(in crate::engine) fn qm_sa_requests(
        &mut self,
        serial: IsakmpSerial,
        msgid: u32,
        dirs: &[Direction],
    ) -> Vec<KernelRequest> {
        let Some(keys) = self.p1_keys(serial) else {
            return Vec::new();
        };
        let Some(p1) = self.phase1.get(&serial) else {
            return Vec::new();
        };
        let (local_addr, remote_addr) = (p1.local, p1.remote);
        let nat = p1.nat_local || p1.nat_remote;
        let Some(conn_name) = self
            .quick
            .get(&(serial, msgid))
            .map(|q| q.connection.clone())
        else {
            return Vec::new();
        };
        let reqid = self.reqid(&conn_name);
        let Some(qm) = self.quick.get(&(serial, msgid)) else {
            return Vec::new();
        };
        let Some(agreement) = qm.stage.agreement() else {
            return Vec::new();
        };
        let chosen = &agreement.chosen;
        let (local_sel, remote_sel) = qm_selectors(qm, local_addr.ip(), remote_addr.ip());
        let mut requests = Vec::new();
        for cp in &chosen.protocols {
            let Some(our_spi) = agreement
                .spis
                .iter()
                .find(|(p, _)| *p == cp.protocol)
                .map(|(_, s)| *s)
            else {
                continue;
            };
            let peer_spi = u32::from_be_bytes(cp.peer_spi);
            let (enc_len, auth_len) = key_lengths(cp.transform.cipher, cp.transform.integ);
            for dir in dirs {
                let (spi, src, dst) = match dir {
                    Direction::Inbound => (our_spi, remote_addr.ip(), local_addr.ip()),
                    Direction::Outbound => (peer_spi, local_addr.ip(), remote_addr.ip()),
                };
                let km = keymat(
                    keys.prf,
                    &keys.skeyid_d,
                    agreement.gqm.as_deref(),
                    protocol_id(cp.protocol).0,
                    &spi.to_be_bytes(),
                    &agreement.ni_b,
                    &agreement.nr_b,
                    enc_len + auth_len,
                );
                let udp_encap = (nat && cp.protocol == IpsecProtocol::Esp).then(|| match dir {
                    Direction::Inbound => (remote_addr.port(), local_addr.port()),
                    Direction::Outbound => (local_addr.port(), remote_addr.port()),
                });
                requests.push(KernelRequest::AddSa(SaSpec {
                    connection: qm.connection.clone(),
                    direction: *dir,
                    protocol: cp.protocol,
                    spi,
                    src,
                    dst,
                    mode: chosen.encap,
                    udp_encap,
                    cipher: cp.transform.cipher,
                    enc_key: Secret::from(km[..enc_len].to_vec()),
                    integ: cp.transform.integ,
                    auth_key: Secret::from(km[enc_len..].to_vec()),
                    lifetime: chosen.lifetime,
                    local: local_sel.clone(),
                    remote: remote_sel.clone(),
                    reqid,
                }));
            }
        }
        requests
    }

    pub(in crate::engine) fn reqid(&mut self, connection: &str) -> u32 {
        // One past the highest in use: imported connections bring reqids of their own.
        let next = self.reqids.values().max().map_or(0x4001, |m| m + 1);
        *self
            .reqids
            .entry(ConnectionName::from(connection))
            .or_insert(next)
    }
}
