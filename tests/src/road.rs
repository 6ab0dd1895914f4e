//! Road warriors: one office gateway and several client hosts, each in its own namespace
//! on its own veth link to the gateway, all under one passive connection of the gateway
//! (`[Phase 1] Default`, a Remote-ID range of client addresses).
//!
//! ```text
//!   client i: 10.1.0.(i+1) on lo, 198.51.100.(4i+2)/30 ===== 198.51.100.(4i+1)/30 office
//!   office:   10.2.0.1/16 on lo
//! ```

use crate::daemon::Daemon;
use crate::netns::Netns;
use std::path::Path;

pub const PSK: &str = "road-warriors-Jq8v2Lm5";
/// The gateway's connection, and each client's.
pub const OFFICE_CONNECTION: &str = "clients-to-office";
pub const CLIENT_CONNECTION: &str = "to-office";

/// Client `i`'s own host address (its Local-ID), behind its gateway address.
pub fn client_host(i: usize) -> String {
    format!("10.1.0.{}", i + 1)
}

/// Client `i`'s address on its link, and the office's address on that link.
pub fn client_addr(i: usize) -> String {
    format!("198.51.100.{}", 4 * i + 2)
}

pub fn office_addr(i: usize) -> String {
    format!("198.51.100.{}", 4 * i + 1)
}

/// The office's isakmpd.conf: one passive connection for every client in 10.1.0.1-254,
/// with `updown` run for each tunnel when given.
pub fn office_conf(updown: Option<&Path>) -> String {
    let updown = updown.map_or(String::new(), |p| format!("Updown=\t{}\n", p.display()));
    format!(
        "[General]\nRetransmits=\t5\nExchange-max-time=\t60\n\n\
         [Phase 1]\nDefault=\troad-warriors\n\n\
         [Phase 2]\nPassive-connections=\t{OFFICE_CONNECTION}\n\n\
         [road-warriors]\nPhase=\t1\nConfiguration=\tmm\nAuthentication=\t{PSK}\n\n\
         [mm]\nEXCHANGE_TYPE=\tID_PROT\nTransforms=\tAES-128-SHA-GRP14\n\n\
         [{OFFICE_CONNECTION}]\nPhase=\t2\nISAKMP-peer=\troad-warriors\nConfiguration=\tqm\n\
         Local-ID=\toffice-net\nRemote-ID=\tclient-range\n{updown}\n\
         [office-net]\nID-type=\tIPV4_ADDR_SUBNET\nNetwork=\t10.2.0.0\nNetmask=\t255.255.0.0\n\n\
         [client-range]\nID-type=\tIPV4_ADDR_RANGE\nStart=\t10.1.0.1\nEnd=\t10.1.0.254\n\n\
         [qm]\nEXCHANGE_TYPE=\tQUICK_MODE\nSuites=\tQM-ESP-AES-SHA-PFS-SUITE\n"
    )
}

/// Client `i`'s isakmpd.conf: its own host to the office network.
pub fn client_conf(i: usize) -> String {
    client_conf_at(&client_addr(i), &office_addr(i), &client_host(i))
}

/// A client's isakmpd.conf: from `me` to the office at `office`, for its own `host`.
pub fn client_conf_at(me: &str, office: &str, host: &str) -> String {
    format!(
        "[General]\nRetransmits=\t5\nExchange-max-time=\t60\n\n\
         [Phase 1]\n{office}=\toffice-gw\n\n\
         [Phase 2]\nConnections=\t{CLIENT_CONNECTION}\n\n\
         [office-gw]\nPhase=\t1\nLocal-address=\t{me}\nAddress=\t{office}\n\
         Configuration=\tmm\nAuthentication=\t{PSK}\n\n\
         [mm]\nEXCHANGE_TYPE=\tID_PROT\nTransforms=\tAES-128-SHA-GRP14\n\n\
         [{CLIENT_CONNECTION}]\nPhase=\t2\nISAKMP-peer=\toffice-gw\nConfiguration=\tqm\n\
         Local-ID=\tme\nRemote-ID=\toffice-net\n\n\
         [me]\nID-type=\tIPV4_ADDR\nAddress=\t{host}\n\n\
         [office-net]\nID-type=\tIPV4_ADDR_SUBNET\nNetwork=\t10.2.0.0\nNetmask=\t255.255.0.0\n\n\
         [qm]\nEXCHANGE_TYPE=\tQUICK_MODE\nSuites=\tQM-ESP-AES-SHA-PFS-SUITE\n"
    )
}

/// The namespaces, linked and routed; removed on drop (after the daemons in [`Road`]).
pub struct RoadNet {
    pub office: Netns,
    pub clients: Vec<Netns>,
}

impl RoadNet {
    pub fn new(tag: &str, n: usize) -> Result<RoadNet, String> {
        let office = Netns::new(&format!("{tag}o"))?;
        office.exec(&["ip", "addr", "add", "10.2.0.1/16", "dev", "lo"])?;
        let mut clients = Vec::new();
        for i in 0..n {
            let c = Netns::new(&format!("{tag}c{i}"))?;
            Netns::link_named(
                &office,
                &format!("c{i}"),
                &format!("{}/30", office_addr(i)),
                &c,
                "wan0",
                &format!("{}/30", client_addr(i)),
            )?;
            let host = client_host(i);
            c.exec(&["ip", "addr", "add", &format!("{host}/32"), "dev", "lo"])?;
            c.exec(&[
                "ip",
                "route",
                "add",
                "10.2.0.0/16",
                "via",
                &office_addr(i),
                "src",
                &host,
            ])?;
            office.exec(&[
                "ip",
                "route",
                "add",
                &format!("{host}/32"),
                "via",
                &client_addr(i),
                "src",
                "10.2.0.1",
            ])?;
            clients.push(c);
        }
        Ok(RoadNet { office, clients })
    }
}

/// The office's daemon and one per client; dropped before the namespaces.
pub struct Road {
    pub office: Daemon,
    pub clients: Vec<Daemon>,
    pub net: RoadNet,
}

impl Road {
    /// Start the office with `office_args`, then every client with `client_args`.
    pub fn start(
        tag: &str,
        n: usize,
        updown: Option<&Path>,
        office_args: &[&str],
        client_args: &[&str],
    ) -> Result<Road, String> {
        let net = RoadNet::new(tag, n)?;
        let office = Daemon::start(
            &net.office,
            &format!("{tag}o"),
            &office_conf(updown),
            office_args,
        )?;
        let mut clients = Vec::new();
        for (i, ns) in net.clients.iter().enumerate() {
            clients.push(Daemon::start(
                ns,
                &format!("{tag}c{i}"),
                &client_conf(i),
                client_args,
            )?);
        }
        Ok(Road {
            office,
            clients,
            net,
        })
    }

    pub fn logs(&self) -> String {
        let mut s = format!("--- office:\n{}\n", self.office.log_text());
        for (i, c) in self.clients.iter().enumerate() {
            s.push_str(&format!("--- client {i}:\n{}\n", c.log_text()));
        }
        s
    }

    /// Until every client and the office have `n` tunnels established in all.
    pub fn wait_up(&self, timeout: std::time::Duration) -> Result<(), String> {
        let n = self.clients.len();
        let ok = crate::wait_until(timeout, || {
            self.office.log_count("phase 2 established") >= n
                && self
                    .clients
                    .iter()
                    .all(|c| c.log_count("phase 2 established") >= 1)
        });
        if ok {
            Ok(())
        } else {
            Err(format!(
                "not all {n} road warriors up within {timeout:?}\n{}",
                self.logs()
            ))
        }
    }
}
