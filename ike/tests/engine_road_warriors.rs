//! Many road warriors under one connection of a gateway (`[Phase 1] Default`, a passive
//! connection whose Remote-ID is a range of client addresses): each client gets a tunnel of
//! its own, with its own SAs and policies, and what one client does (rekey, Delete, dying)
//! touches only its own tunnel; a client that comes back from another address with the
//! same identity replaces its old SAs (Unique-ids).

mod sim;

use ike::conf::Conf;
use ike::engine::{Event, Selector};
use ike::policy::{redact_secrets, secrets, Policy};
use sim::setup::{timers, B_IP};
use sim::{Node, Sim, Store};
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// The gateway at B: one passive connection for every client in 10.1.0.1-10.1.0.254.
const GATEWAY: &str = "\
[General]
Retransmits=\t\t5

[Phase 1]
Default=\t\troad-warriors

[Phase 2]
Passive-connections=\tclients-to-office

[road-warriors]
Phase=\t\t\t1
Configuration=\t\tmm
Authentication=\t\tsesame#open
{dpd}

[mm]
EXCHANGE_TYPE=\t\tID_PROT
Transforms=\t\tAES-256-SHA2-256-GRP14

[clients-to-office]
Phase=\t\t\t2
ISAKMP-peer=\t\troad-warriors
Configuration=\t\tqm
Local-ID=\t\toffice
Remote-ID=\t\tclient-range

[office]
ID-type=\t\tIPV4_ADDR_SUBNET
Network=\t\t10.2.0.0
Netmask=\t\t255.255.0.0

[client-range]
ID-type=\t\tIPV4_ADDR_RANGE
Start=\t\t\t10.1.0.1
End=\t\t\t10.1.0.254

[qm]
EXCHANGE_TYPE=\t\tQUICK_MODE
Suites=\t\t\tQM-ESP-AES-SHA-SUITE
";

/// Client `i`: gateway address 192.0.2.(10+i), its own host 10.1.0.(1+i) behind it.
const CLIENT: &str = "\
[General]
Retransmits=\t\t5

[Phase 1]
192.0.2.2=\t\toffice-gw

[Phase 2]
Connections=\t\tto-office

[office-gw]
Phase=\t\t\t1
Local-address=\t\t{me}
Address=\t\t192.0.2.2
Configuration=\t\tmm
Authentication=\t\tsesame#open
{id}

[mm]
EXCHANGE_TYPE=\t\tID_PROT
Transforms=\t\tAES-256-SHA2-256-GRP14

[to-office]
Phase=\t\t\t2
ISAKMP-peer=\t\toffice-gw
Configuration=\t\tqm
Local-ID=\t\tme
Remote-ID=\t\toffice

[me]
ID-type=\t\tIPV4_ADDR
Address=\t\t{host}

[office]
ID-type=\t\tIPV4_ADDR_SUBNET
Network=\t\t10.2.0.0
Netmask=\t\t255.255.0.0

[qm]
EXCHANGE_TYPE=\t\tQUICK_MODE
Suites=\t\t\tQM-ESP-AES-SHA-SUITE
";

const CONNECTION: &str = "clients-to-office";

fn node(name: &'static str, ip: IpAddr, text: &str, seed: u64, now: Instant) -> Node {
    let conf = Conf::parse(text).expect("configuration parses");
    let mut store = Store::default();
    for (section, key) in secrets(&conf) {
        store.psks.insert(section, key.to_vec());
    }
    let policy = Policy::from_conf(&redact_secrets(&conf)).expect("policy");
    Node::new(name, ip, policy, store, timers(), seed, now)
}

fn client_host(i: u8) -> IpAddr {
    IpAddr::from([10, 1, 0, 1 + i])
}

fn client(i: u8, now: Instant) -> Node {
    client_with_id(i, [192, 0, 2, 10 + i], "", now)
}

/// Client `i` (its host 10.1.0.(1+i)) at gateway address `me`, with a phase 1 ID section
/// body (`ID-type=...`), or its address as its ID when empty.
fn client_with_id(i: u8, me: [u8; 4], id: &str, now: Instant) -> Node {
    let id = if id.is_empty() {
        String::new()
    } else {
        format!("ID=\t\t\tmy-id\n\n[my-id]\n{id}")
    };
    let seed = 1000 + u64::from(i) * 256 + u64::from(me[3]);
    let me = IpAddr::from(me);
    let text = CLIENT
        .replace("{me}", &me.to_string())
        .replace("{host}", &client_host(i).to_string())
        .replace("{id}", &id);
    node("A", me, &text, seed, now)
}

fn gateway(dpd: &str, now: Instant) -> Node {
    node(
        "B",
        IpAddr::V4(B_IP),
        &GATEWAY.replace("{dpd}", dpd),
        7,
        now,
    )
}

/// Bring clients `0..n` up one after the other against the gateway; client `n - 1` is
/// left in the simulation (the others are gone from the network).
fn clients_up(n: u8, dpd: &str) -> Sim {
    let now = Instant::now();
    let mut sim = Sim::new(client(0, now), gateway(dpd, now), now);
    for i in 0..n {
        if i > 0 {
            sim.a = client(i, sim.now);
        }
        sim.a.engine.start_active(sim.now);
        let want = usize::from(i) + 1;
        assert!(
            sim.run_until(Duration::from_secs(30), |s| s.a.phase2_up("to-office") >= 1
                && s.b.phase2_up(CONNECTION) >= want),
            "client {i} did not come up: {:?}",
            sim.b.logs.iter().rev().take(5).collect::<Vec<_>>()
        );
    }
    sim
}

/// The remote selectors of the gateway's policies for the connection.
fn policy_remotes(sim: &Sim) -> BTreeSet<IpAddr> {
    sim.b
        .kernel
        .policies_of(CONNECTION)
        .iter()
        .map(|p| p.remote.address)
        .collect()
}

fn host(a: IpAddr) -> Selector {
    Selector::host(a)
}

#[test]
fn fifty_road_warriors_keep_a_tunnel_each_and_a_rekey_replaces_only_its_own() {
    const N: u8 = 50;
    let mut sim = clients_up(N, "");
    let sas = sim.b.engine.ipsec_sas();
    assert_eq!(sas.len(), usize::from(N));
    let replaced = sas.iter().filter(|s| s.replaced).count();
    assert_eq!(replaced, 0, "a new client's SA replaced another client's");
    // One policy set per client, each for that client's host.
    let remotes = policy_remotes(&sim);
    let want: BTreeSet<IpAddr> = (0..N).map(client_host).collect();
    assert_eq!(remotes, want);
    assert!(sim
        .b
        .kernel
        .policies_of(CONNECTION)
        .iter()
        .all(|p| p.remote == host(p.remote.address) && p.remote_addr != p.local_addr));
    // Each client's tunnel appeared once (updown's up verbs run per client).
    let firsts = sim
        .b
        .events
        .iter()
        .filter(|e| matches!(e, Event::Phase2Up { first: true, .. }))
        .count();
    assert_eq!(firsts, usize::from(N));

    // The last client rekeys: its own older SA is replaced, no other client's.
    assert!(
        sim.run_until(Duration::from_secs(3600), |s| s.b.phase2_up(CONNECTION)
            > usize::from(N)),
        "the last client did not rekey"
    );
    let sas = sim.b.engine.ipsec_sas();
    let replaced: Vec<_> = sas.iter().filter(|s| s.replaced).collect();
    assert_eq!(replaced.len(), 1, "{replaced:?}");
    assert_eq!(replaced[0].remote, host(client_host(N - 1)));
    assert_eq!(sim.b.kernel.policies_of(CONNECTION).len(), usize::from(N));

    // The last client goes (Delete for its SAs): its policies go, every other client's stay.
    let now = sim.now;
    sim.a.engine.teardown_all(now);
    assert!(
        sim.run_until(Duration::from_secs(10), |s| !policy_remotes(s)
            .contains(&client_host(N - 1)))
    );
    let left: BTreeSet<IpAddr> = (0..N - 1).map(client_host).collect();
    assert_eq!(policy_remotes(&sim), left);
    assert!(sim
        .b
        .engine
        .ipsec_sas()
        .iter()
        .all(|s| s.remote != host(client_host(N - 1))));
}

#[test]
fn a_dead_road_warrior_takes_only_its_own_tunnel() {
    // Clients 0..4 leave the network without a word; client 4 stays and answers DPD.
    let dpd = "DPD-check-interval=\t10\nDPD-action=\t\tclear";
    let mut sim = clients_up(5, dpd);
    assert_eq!(sim.b.engine.ipsec_sas().len(), 5);
    assert!(
        sim.run_until(Duration::from_secs(300), |s| s
            .b
            .events
            .iter()
            .filter(|e| matches!(e, Event::PeerDead { .. }))
            .count()
            >= 4),
        "{:?}",
        sim.b.logs.iter().rev().take(8).collect::<Vec<_>>()
    );
    sim.advance(Duration::from_secs(30));
    let alive = client_host(4);
    let sas = sim.b.engine.ipsec_sas();
    assert_eq!(sas.len(), 1, "{sas:?}");
    assert_eq!(sas[0].remote, host(alive));
    assert_eq!(policy_remotes(&sim), BTreeSet::from([alive]));
    assert_eq!(sim.b.engine.phase1_sas().len(), 1);
    assert!(sim.a.kernel.has_policy("to-office"));
}

/// Bring up client 0 at `first` and then at `second` with the same phase 1 `id`, under a
/// gateway whose `[General]` gets `general`; the gateway's logs and remote addresses of
/// its IPsec SAs and ISAKMP SAs after.
fn reconnect(id: &str, general: &str, first: [u8; 4], second: [u8; 4]) -> Sim {
    let now = Instant::now();
    let gw_text =
        GATEWAY
            .replace("{dpd}", "")
            .replacen("[General]\n", &format!("[General]\n{general}"), 1);
    let gw = node("B", IpAddr::V4(B_IP), &gw_text, 7, now);
    let mut sim = Sim::new(client_with_id(0, first, id, now), gw, now);
    for (n, at) in [(1, first), (2, second)] {
        if n == 2 {
            sim.a = client_with_id(0, at, id, sim.now);
        }
        sim.a.engine.start_active(sim.now);
        assert!(
            sim.run_until(Duration::from_secs(30), |s| s.a.phase2_up("to-office") >= 1
                && s.b.phase2_up(CONNECTION) >= n),
            "{:?}",
            sim.b.logs
        );
    }
    sim.advance(Duration::from_secs(2));
    sim
}

fn p1_remotes(sim: &Sim) -> Vec<IpAddr> {
    sim.b
        .engine
        .phase1_sas()
        .iter()
        .map(|p| p.remote.ip())
        .collect()
}

#[test]
fn a_road_warrior_that_comes_back_from_another_address_replaces_its_old_sas() {
    let fqdn = "ID-type=\t\tFQDN\nName=\t\t\talice.example.com";
    let sim = reconnect(fqdn, "", [192, 0, 2, 10], [192, 0, 2, 20]);
    assert_eq!(
        p1_remotes(&sim),
        vec![IpAddr::from([192, 0, 2, 20])],
        "{:?}",
        sim.b.logs
    );
    let sas = sim.b.engine.ipsec_sas();
    assert_eq!(sas.len(), 1, "{sas:?}");
    assert!(sim
        .b
        .log_contains("is now at 192.0.2.20: its SAs at 192.0.2.10 are removed (Unique-ids)"));
    assert!(sim
        .b
        .kernel
        .sas
        .values()
        .all(|s| s.src != IpAddr::from([192, 0, 2, 10]) && s.dst != IpAddr::from([192, 0, 2, 10])));

    // Unique-ids=no: the old host's ISAKMP SA stays.
    let sim = reconnect(fqdn, "Unique-ids=\tno\n", [192, 0, 2, 10], [192, 0, 2, 20]);
    assert_eq!(p1_remotes(&sim).len(), 2, "{:?}", sim.b.logs);
    assert!(!sim.b.log_contains("(Unique-ids)"));
}

#[test]
fn hosts_that_share_an_address_id_are_not_taken_for_one() {
    // Two hosts behind NATs both say they are 192.168.1.2: both keep their SAs.
    let private = "ID-type=\t\tIPV4_ADDR\nAddress=\t\t192.168.1.2";
    let sim = reconnect(private, "", [192, 0, 2, 10], [192, 0, 2, 20]);
    assert_eq!(p1_remotes(&sim).len(), 2, "{:?}", sim.b.logs);
    assert!(!sim.b.log_contains("(Unique-ids)"));
}
