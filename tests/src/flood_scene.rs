//! The flood scene shared by the flood test and `flood_bench`: west, a gateway that takes
//! Main Mode from any address (a `Default` peer) and Aggressive Mode by identity from any
//! address, with east and north as its honest peers, and what the flood offers.

use crate::pair::*;
use crate::procfs;
use ike::crypto::{EncrAlg, Group, HashAlg};
use ike::policy::{
    phase1_sa, AuthMethod, Credentials, DpdAction, LifetimeRange, Peer, Phase1Mode, Phase1Transform,
};
use std::net::SocketAddr;

pub const PSK: &str = "flood-test-secret";
pub const NORTH_ADDR: &str = "192.0.2.3";
/// West's configuration: the east/west gateway, plus north (192.0.2.3, subnet
/// 10.3.0.0/16), a `Default` Main Mode peer and an Aggressive Mode peer known by FQDN;
/// `general` goes into `[General]` (tags and values, one a line).
pub fn west_conf(general: &str) -> String {
    let base = gateway_conf(false, &Auth::Psk(PSK.into())).replacen(
        "[General]\n",
        &format!("[General]\n{general}"),
        1,
    );
    let base = base
        .replacen(
            "[Phase 1]\n",
            &format!("[Phase 1]\n{NORTH_ADDR}=\t\tpeer-north\n192.0.2.250=\t\tpeer-am\nDefault=\t\tpeer-rw\n"),
            1,
        )
        .replacen(
            &format!("Passive-connections=\t{WEST_CONNECTION}"),
            &format!("Passive-connections=\t{WEST_CONNECTION},IPsec-west-north"),
            1,
        );
    format!(
        "{base}
[peer-north]
Phase=\t\t\t1
Transport=\t\tudp
Local-address=\t\t{WEST_ADDR}
Address=\t\t{NORTH_ADDR}
Configuration=\t\t{WEST_PEER_SECTION}-main-mode
Authentication=\t\t{PSK}

[IPsec-west-north]
Phase=\t\t\t2
ISAKMP-peer=\t\tpeer-north
Configuration=\t\t{WEST_CONNECTION}-quick-mode
Local-ID=\t\t{WEST_CONNECTION}-local
Remote-ID=\t\tIPsec-west-north-remote

[IPsec-west-north-remote]
ID-type=\t\tIPV4_ADDR_SUBNET
Network=\t\t10.3.0.0
Netmask=\t\t255.255.0.0

[peer-rw]
Phase=\t\t\t1
Transport=\t\tudp
Configuration=\t\t{WEST_PEER_SECTION}-main-mode
Authentication=\t\troad-warrior-secret

[peer-am]
Phase=\t\t\t1
Transport=\t\tudp
Configuration=\t\tpeer-am-aggressive
Authentication=\t\taggressive-secret
Remote-ID=\t\tpeer-am-id

[peer-am-id]
ID-type=\t\tFQDN
Name=\t\t\tam.example

[peer-am-aggressive]
DOI=\t\t\tIPSEC
EXCHANGE_TYPE=\t\tAGGRESSIVE
Transforms=\t\tAES-256-SHA2-256-GRP14
"
    )
}

/// North: east's configuration on 192.0.2.3 with subnet 10.3.0.0/16, bound to its own
/// address only (it shares east's namespace).
///
/// North gives up an exchange after 4 s and its watchdog starts again every 2 s: while the
/// flood runs at full speed the kernel drops most datagrams to west, north's third message
/// among them, and once its exchange has given its place to the flood only a new attempt
/// gets through (seen once in CI: the first attempt timed out and the second, 60 s later
/// with the default intervals, came up).
pub fn north_conf() -> String {
    gateway_conf(true, &Auth::Psk(PSK.into()))
        .replace(EAST_ADDR, NORTH_ADDR)
        .replace("10.1.0.0", "10.3.0.0")
        .replace("Exchange-max-time=\t30", "Exchange-max-time=\t4")
        .replacen(
            "[General]\n",
            &format!("[General]\nListen-on=\t\t{NORTH_ADDR}\nCheck-interval=\t2\n"),
            1,
        )
}

/// What the flood offers: west's own phase 1 transform, pre-shared keys.
pub fn offer() -> ike::codec::SaPayload {
    phase1_sa(&Peer {
        name: "flood".into(),
        address: SocketAddr::from(([0, 0, 0, 0], 500)),
        local_address: None,
        mode: Phase1Mode::Main,
        transforms: vec![Phase1Transform {
            name: "AES-256-SHA2-256-GRP14".into(),
            encr: EncrAlg::AesCbc256,
            hash: HashAlg::Sha256,
            group: Group::Modp2048,
            auth: AuthMethod::PreShared,
            lifetime: LifetimeRange {
                default: 3600,
                min: 60,
                max: 86_400,
            },
        }],
        credentials: Credentials::PreShared {
            secret: String::new(),
        },
        local_id: None,
        remote_id: None,
        dpd_interval: 0,
        dpd_timeout: None,
        dpd_action: DpdAction::Clear,
        nat_t: false,
    })
}

/// The resident size of a daemon's processes together, and the largest peak of one, KiB.
pub fn memory_kib(parent: u32) -> (u64, u64) {
    let kib = |pid: u32, field: &str| {
        procfs::status_field(pid, field)
            .and_then(|v| {
                v.split_whitespace()
                    .next()
                    .and_then(|n| n.parse::<u64>().ok())
            })
            .unwrap_or(0)
    };
    let mut pids = vec![parent];
    pids.extend(procfs::role_children(parent, "child"));
    pids.extend(procfs::role_children(parent, "helper"));
    let rss = pids.iter().map(|p| kib(*p, "VmRSS:")).sum();
    let hwm = pids.iter().map(|p| kib(*p, "VmHWM:")).max().unwrap_or(0);
    (rss, hwm)
}
