//! NAT-T in phase 1 (RFC 3947 3.2, 4): NAT-D payloads, NAT detection, the float to 4500.

use super::*;

impl Engine {
    /// Compare the peer's NAT-D payloads with the addresses we see (RFC 3947 3.2).
    pub(in crate::engine) fn detect_nat(&mut self, serial: IsakmpSerial, payloads: &[Payload]) {
        let Some((local, remote)) = self.phase1.get(&serial).map(|p| (p.local, p.remote)) else {
            return;
        };
        self.detect_nat_on(serial, payloads, local, remote);
    }

    /// The same, for a message that came to `local` from `remote` (which the SA follows only
    /// once that message has authenticated).
    pub(in crate::engine) fn detect_nat_on(
        &mut self,
        serial: IsakmpSerial,
        payloads: &[Payload],
        local: SocketAddr,
        remote: SocketAddr,
    ) {
        let Some(p1) = self.phase1.get_mut(&serial) else {
            return;
        };
        let Some(h) = p1.hash_alg() else { return };
        if p1.natt.is_none() {
            return;
        }
        let hashes: Vec<&Vec<u8>> = payloads
            .iter()
            .filter_map(|p| match p {
                Payload::NatD { hash, .. } => Some(hash),
                _ => None,
            })
            .collect();
        let Some((first, rest)) = hashes.split_first() else {
            // The peer announced NAT-T but sent no NAT-D: treat as no NAT-T.
            p1.natt = None;
            return;
        };
        let ours = nat_d(h, &p1.icookie, &p1.rcookie, local);
        let theirs = nat_d(h, &p1.icookie, &p1.rcookie, remote);
        p1.nat_local = **first != ours;
        p1.nat_remote = !rest.iter().any(|x| **x == theirs);
        let (l, r, peer) = (p1.nat_local, p1.nat_remote, p1.peer.clone());
        if l || r {
            self.ctx.log(
                LogLevel::Info,
                format!(
                    "NAT detected with {peer}:{}{}",
                    if l { " we are behind a NAT" } else { "" },
                    if r { " the peer is behind a NAT" } else { "" }
                ),
            );
        }
    }

    /// After NAT is detected, IKE moves to the NAT-T port (RFC 3947 4).
    pub(in crate::engine) fn float(&mut self, serial: IsakmpSerial) {
        let natt_port = self.ctx.cfg.natt_port;
        let Some(p1) = self.phase1.get_mut(&serial) else {
            return;
        };
        if (p1.nat_local || p1.nat_remote) && p1.local.port() != natt_port {
            p1.local.set_port(natt_port);
            p1.remote.set_port(natt_port);
        }
    }
}

impl Phase1 {
    /// NAT-D payloads for a message: the peer's address first, then ours (RFC 3947 3.2).
    pub(in crate::engine) fn nat_d_payloads(&self, hash: HashAlg) -> Vec<Payload> {
        let Some(v) = self.natt else {
            return Vec::new();
        };
        let draft = v == NatTVersion::Draft;
        vec![
            Payload::NatD {
                hash: nat_d(hash, &self.icookie, &self.rcookie, self.remote),
                draft,
            },
            Payload::NatD {
                hash: nat_d(hash, &self.icookie, &self.rcookie, self.local),
                draft,
            },
        ]
    }
}
