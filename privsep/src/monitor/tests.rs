use super::*;
use ike::conf::Conf;
use ike::crypto::Secret;
use ike::policy::{IntegAlg, Lifetime};
use std::time::Instant;

const CONF: &str = "\
[Phase 1]
192.0.2.2=peer-west
Default=rw
[Phase 2]
Connections=east-west
Passive-connections=road,hosts
[peer-west]
Phase=1
Address=192.0.2.2
Local-address=192.0.2.1
Authentication=k
[rw]
Phase=1
Authentication=k
[east-west]
Phase=2
ISAKMP-peer=peer-west
Configuration=qm
Local-ID=net-east
Remote-ID=net-west
[hosts]
Phase=2
ISAKMP-peer=peer-west
Configuration=qm-transport
[road]
Phase=2
ISAKMP-peer=rw
Configuration=qm
Local-ID=net-east
Remote-ID=pool
[net-east]
ID-type=IPV4_ADDR_SUBNET
Network=10.1.0.0
Netmask=255.255.0.0
[net-west]
ID-type=IPV4_ADDR_SUBNET
Network=10.2.0.0
Netmask=255.255.0.0
[pool]
ID-type=IPV4_ADDR_RANGE
Start=10.9.0.10
End=10.9.0.20
[qm]
DOI=IPSEC
EXCHANGE_TYPE=QUICK_MODE
Suites=QM-ESP-AES-128-SHA-SUITE
[qm-transport]
DOI=IPSEC
EXCHANGE_TYPE=QUICK_MODE
Suites=QM-ESP-TRP-AES-128-SHA-SUITE
";

fn policy() -> Policy {
    let c = Conf::parse(CONF).expect("conf");
    Policy::from_conf(&c).expect("policy")
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

fn net(a: &str, len: u8) -> Selector {
    Selector {
        prefix_len: len,
        ..Selector::host(ip(a))
    }
}

fn ours(a: IpAddr) -> bool {
    a == ip("192.0.2.1")
}

fn run(p: &Policy, t: &mut Table, r: &KernelRequest) -> Result<KernelRequest, Refusal> {
    check(p, t, &mut ours, r)
}

fn sa(direction: Direction, spi: u32) -> SaSpec {
    let (src, dst) = match direction {
        Direction::Inbound => (ip("192.0.2.2"), ip("192.0.2.1")),
        Direction::Outbound => (ip("192.0.2.1"), ip("192.0.2.2")),
    };
    SaSpec {
        connection: "east-west".into(),
        direction,
        protocol: IpsecProtocol::Esp,
        spi,
        src,
        dst,
        mode: EncapMode::Tunnel,
        udp_encap: None,
        cipher: Some(EspCipher::AesCbc { key_bits: 128 }),
        enc_key: Secret::new(vec![1; 16]),
        integ: Some(IntegAlg::HmacSha1),
        auth_key: Secret::new(vec![2; 20]),
        lifetime: Lifetime {
            seconds: 1200,
            kilobytes: None,
        },
        local: net("10.1.0.0", 16),
        remote: net("10.2.0.0", 16),
        // Whatever the child says: the parent assigns its own.
        reqid: 0x7777,
    }
}

fn policy_spec() -> PolicySpec {
    PolicySpec {
        connection: "east-west".into(),
        local: net("10.1.0.0", 16),
        remote: net("10.2.0.0", 16),
        local_addr: ip("192.0.2.1"),
        remote_addr: ip("192.0.2.2"),
        mode: EncapMode::Tunnel,
        protocols: vec![IpsecProtocol::Esp],
        reqid: 0x1234,
    }
}

/// An inbound SPI allocated through the monitor, as the parent does.
fn allocate(p: &Policy, t: &mut Table, peer: &str, spi: u32) {
    let r = KernelRequest::AllocSpi {
        protocol: IpsecProtocol::Esp,
        src: ip(peer),
        dst: ip("192.0.2.1"),
    };
    run(p, t, &r).expect("allocation allowed");
    t.record_larval(
        SaKey {
            protocol: IpsecProtocol::Esp,
            spi,
            dst: ip("192.0.2.1"),
        },
        ip(peer),
        Instant::now(),
    );
}

#[test]
fn a_negotiated_sa_and_its_policies_go_in_under_the_parents_reqid() {
    let p = policy();
    let mut t = Table::new();
    allocate(&p, &mut t, "192.0.2.2", 0x1001);
    for s in [
        sa(Direction::Inbound, 0x1001),
        sa(Direction::Outbound, 0x2002),
    ] {
        match run(&p, &mut t, &KernelRequest::AddSa(s)) {
            Ok(KernelRequest::AddSa(a)) => assert_eq!(a.reqid, 0x4001),
            other => panic!("{other:?}"),
        }
    }
    match run(&p, &mut t, &KernelRequest::AddPolicy(policy_spec())) {
        Ok(KernelRequest::AddPolicy(a)) => assert_eq!(a.reqid, 0x4001),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_zero_policy_or_selectors_outside_the_ids_are_refused() {
    let p = policy();
    let mut t = Table::new();
    let mut any = policy_spec();
    any.local = net("0.0.0.0", 0);
    any.remote = net("0.0.0.0", 0);
    let e = run(&p, &mut t, &KernelRequest::AddPolicy(any)).expect_err("0/0");
    assert!(
        e.to_string()
            .contains("outside the connection's 10.1.0.0/16"),
        "{e}"
    );
    let mut wide = policy_spec();
    wide.remote = net("10.0.0.0", 8);
    let e = run(&p, &mut t, &KernelRequest::AddPolicy(wide)).expect_err("wider");
    assert!(e.to_string().contains("remote selector 10.0.0.0/8"), "{e}");
    // Narrower than the IDs is what a peer may negotiate.
    let mut narrow = policy_spec();
    narrow.remote = net("10.2.3.0", 24);
    assert!(run(&p, &mut t, &KernelRequest::AddPolicy(narrow)).is_ok());
    allocate(&p, &mut t, "192.0.2.2", 0x1001);
    let mut s = sa(Direction::Inbound, 0x1001);
    s.local = net("192.168.0.0", 16);
    let e = run(&p, &mut t, &KernelRequest::AddSa(s)).expect_err("outside");
    assert!(
        e.to_string().contains("local selector 192.168.0.0/16"),
        "{e}"
    );
}

#[test]
fn only_towards_the_connections_peer_and_from_our_addresses() {
    let p = policy();
    let mut t = Table::new();
    let mut elsewhere = policy_spec();
    elsewhere.remote_addr = ip("203.0.113.7");
    let e = run(&p, &mut t, &KernelRequest::AddPolicy(elsewhere)).expect_err("not the peer");
    assert!(
        e.to_string().contains("not the address of peer peer-west"),
        "{e}"
    );
    let mut s = sa(Direction::Outbound, 0x2002);
    s.src = ip("198.51.100.9");
    let e = run(&p, &mut t, &KernelRequest::AddSa(s)).expect_err("not ours");
    assert!(
        e.to_string()
            .contains("198.51.100.9 is not an address of ours"),
        "{e}"
    );
    let mut s = sa(Direction::Outbound, 0x2002);
    s.connection = "no-such".into();
    assert!(run(&p, &mut t, &KernelRequest::AddSa(s))
        .expect_err("unknown")
        .to_string()
        .contains("no connection \"no-such\""));
}

#[test]
fn inbound_sas_only_on_spis_the_parent_allocated_for_that_peer() {
    let p = policy();
    let mut t = Table::new();
    let e = run(
        &p,
        &mut t,
        &KernelRequest::AddSa(sa(Direction::Inbound, 0x1001)),
    )
    .expect_err("never allocated");
    assert!(e.to_string().contains("was not allocated"), "{e}");
    // Allocated for another peer (a road warrior) is not allocated for this one.
    allocate(&p, &mut t, "203.0.113.5", 0x1001);
    assert!(run(
        &p,
        &mut t,
        &KernelRequest::AddSa(sa(Direction::Inbound, 0x1001))
    )
    .is_err());
    let e = run(
        &p,
        &mut t,
        &KernelRequest::AddSa(sa(Direction::Outbound, 0x10)),
    )
    .expect_err("reserved");
    assert!(e.to_string().contains("reserved SPI"), "{e}");
    assert!(
        matches!(
            e,
            Refusal::Sa {
                why: Objection::ReservedSpi(_),
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn only_the_connections_transforms_and_lifetimes() {
    let p = policy();
    let mut t = Table::new();
    let mut null = sa(Direction::Outbound, 0x2002);
    null.cipher = Some(EspCipher::Null);
    let e = run(&p, &mut t, &KernelRequest::AddSa(null)).expect_err("null cipher");
    assert!(
        e.to_string()
            .contains("is no transform of connection east-west"),
        "{e}"
    );
    let mut noauth = sa(Direction::Outbound, 0x2002);
    noauth.integ = None;
    assert!(run(&p, &mut t, &KernelRequest::AddSa(noauth)).is_err());
    let mut transport = sa(Direction::Outbound, 0x2002);
    transport.mode = EncapMode::Transport;
    assert!(run(&p, &mut t, &KernelRequest::AddSa(transport)).is_err());
    for seconds in [0, 100_000_000] {
        let mut s = sa(Direction::Outbound, 0x2002);
        s.lifetime.seconds = seconds;
        let e = run(&p, &mut t, &KernelRequest::AddSa(s)).expect_err("lifetime");
        assert!(e.to_string().contains("lifetime of"), "{e}");
    }
    let mut s = sa(Direction::Outbound, 0x2002);
    s.lifetime.kilobytes = Some(0);
    assert!(run(&p, &mut t, &KernelRequest::AddSa(s)).is_err());
    let mut ah = policy_spec();
    ah.protocols = vec![IpsecProtocol::Ah];
    assert!(run(&p, &mut t, &KernelRequest::AddPolicy(ah)).is_err());
}

#[test]
fn road_warriors_from_any_address_inside_the_configured_range() {
    let p = policy();
    let mut t = Table::new();
    let client = "203.0.113.5";
    allocate(&p, &mut t, client, 0x1001);
    let mut inb = sa(Direction::Inbound, 0x1001);
    inb.connection = "road".into();
    inb.src = ip(client);
    inb.remote = Selector::host(ip("10.9.0.12"));
    assert!(run(&p, &mut t, &KernelRequest::AddSa(inb.clone())).is_ok());
    let mut outside = inb.clone();
    outside.remote = Selector::host(ip("10.9.0.21"));
    let e = run(&p, &mut t, &KernelRequest::AddSa(outside)).expect_err("outside the range");
    assert!(
        e.to_string()
            .contains("outside the connection's 10.9.0.10-10.9.0.20"),
        "{e}"
    );
    let mut pol = policy_spec();
    pol.connection = "road".into();
    pol.remote_addr = ip(client);
    pol.remote = net("0.0.0.0", 0);
    assert!(run(&p, &mut t, &KernelRequest::AddPolicy(pol)).is_err());
}

#[test]
fn host_to_host_is_the_gateways_and_behind_a_nat_one_host_in_transport_mode() {
    let p = policy();
    let mut t = Table::new();
    let mut hosts = policy_spec();
    hosts.connection = "hosts".into();
    hosts.mode = EncapMode::Transport;
    hosts.local = Selector::host(ip("192.0.2.1"));
    hosts.remote = Selector::host(ip("192.0.2.2"));
    assert!(run(&p, &mut t, &KernelRequest::AddPolicy(hosts.clone())).is_ok());
    // The peer behind a NAT names itself by its inside address.
    let mut natted = hosts.clone();
    natted.remote = Selector::host(ip("172.16.0.5"));
    assert!(run(&p, &mut t, &KernelRequest::AddPolicy(natted)).is_ok());
    // But never a subnet.
    let mut subnet = hosts;
    subnet.remote = net("172.16.0.0", 24);
    assert!(run(&p, &mut t, &KernelRequest::AddPolicy(subnet)).is_err());
}

#[test]
fn deletes_only_of_what_the_table_holds() {
    let p = policy();
    let mut t = Table::new();
    let foreign = KernelRequest::DeleteSa {
        protocol: IpsecProtocol::Esp,
        spi: 0x5000,
        src: ip("192.0.2.2"),
        dst: ip("192.0.2.1"),
    };
    let e = run(&p, &mut t, &foreign).expect_err("not ours");
    assert!(
        e.to_string().contains("not an SA the parent installed"),
        "{e}"
    );
    let e = run(&p, &mut t, &KernelRequest::DeletePolicy(policy_spec())).expect_err("not ours");
    assert!(e.to_string().contains("not installed by the parent"), "{e}");
    // Once recorded, the delete goes through with the parent's own record.
    let mut recorded = policy_spec();
    recorded.reqid = 0x4001;
    t.record_policy(&recorded);
    match run(&p, &mut t, &KernelRequest::DeletePolicy(policy_spec())) {
        Ok(KernelRequest::DeletePolicy(d)) => assert_eq!(d.reqid, 0x4001),
        other => panic!("{other:?}"),
    }
    allocate(&p, &mut t, "192.0.2.2", 0x5000);
    assert!(run(&p, &mut t, &foreign).is_ok());
}

#[test]
fn spis_only_for_peers_of_connections_and_bounded() {
    let p = policy();
    let mut t = Table::new();
    let alloc = |src: &str, dst: &str| KernelRequest::AllocSpi {
        protocol: IpsecProtocol::Esp,
        src: ip(src),
        dst: ip(dst),
    };
    assert!(run(&p, &mut t, &alloc("192.0.2.2", "198.51.100.1"))
        .expect_err("not ours")
        .to_string()
        .contains("not an address of ours"));
    assert!(run(&p, &mut t, &alloc("0.0.0.0", "192.0.2.1")).is_err());
    for i in 0..crate::table::MAX_LARVAL_PER_PEER as u32 {
        allocate(&p, &mut t, "192.0.2.2", 0x1000 + i);
    }
    let e = run(&p, &mut t, &alloc("192.0.2.2", "192.0.2.1")).expect_err("bounded");
    assert!(e.to_string().contains("unused SPIs"), "{e}");
    assert!(
        matches!(e, Refusal::NoRoom(NoRoom::LarvalPerPeer { .. })),
        "{e:?}"
    );
}

#[test]
fn without_a_default_peer_no_stranger_gets_an_spi() {
    let c = Conf::parse(&CONF.replace("Default=rw\n", "").replace(
        "Passive-connections=road,hosts",
        "Passive-connections=hosts",
    ))
    .expect("conf");
    let p = Policy::from_conf(&c).expect("policy");
    let mut t = Table::new();
    let e = run(
        &p,
        &mut t,
        &KernelRequest::AllocSpi {
            protocol: IpsecProtocol::Esp,
            src: ip("203.0.113.5"),
            dst: ip("192.0.2.1"),
        },
    )
    .expect_err("stranger");
    assert!(
        e.to_string()
            .contains("with which no connection negotiates"),
        "{e}"
    );
}
