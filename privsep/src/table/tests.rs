use super::*;
use ike::crypto::Secret;
use ike::policy::{EncapMode, EspCipher, IntegAlg, Lifetime};

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

fn net(a: &str, len: u8) -> Selector {
    Selector {
        prefix_len: len,
        ..Selector::host(ip(a))
    }
}

fn sa(direction: Direction, spi: u32) -> SaSpec {
    let (src, dst) = match direction {
        Direction::Inbound => (ip("192.0.2.2"), ip("192.0.2.1")),
        Direction::Outbound => (ip("192.0.2.1"), ip("192.0.2.2")),
    };
    SaSpec {
        connection: "c".into(),
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
            seconds: 3600,
            kilobytes: None,
        },
        local: net("10.1.0.0", 16),
        remote: net("10.2.0.0", 16),
        reqid: FIRST_REQID,
    }
}

fn key(spec: &SaSpec) -> SaKey {
    SaKey {
        protocol: spec.protocol,
        spi: spec.spi,
        dst: spec.dst,
    }
}

#[test]
fn reqids_are_assigned_once_per_connection_and_survive_a_clear() {
    let mut t = Table::new();
    assert_eq!(t.reqid("a"), Ok(0x4001));
    assert_eq!(t.reqid("b"), Ok(0x4002));
    assert_eq!(t.reqid("a"), Ok(0x4001));
    t.clear();
    assert_eq!(t.reqid("b"), Ok(0x4002));
    // 0x4001-0x7fff: two taken, 0x3ffd left.
    for i in 0..0x3ffd {
        t.reqid(&format!("x{i}")).expect("in range");
    }
    assert!(t.reqid("one too many").is_err());
}

#[test]
fn updown_runs_when_the_first_pair_is_in_and_the_last_sa_is_out() {
    let mut t = Table::new();
    let now = Instant::now();
    let inb = sa(Direction::Inbound, 0x1001);
    t.record_larval(key(&inb), inb.src, now);
    assert!(
        t.record_sa(&inb, true).is_none(),
        "no up with one direction"
    );
    let out = sa(Direction::Outbound, 0x2002);
    let up = t.record_sa(&out, true).expect("up");
    assert!(up.up);
    assert_eq!(up.connection, "c");
    assert_eq!((up.me, up.peer), (ip("192.0.2.1"), ip("192.0.2.2")));
    assert_eq!(up.peer_client, net("10.2.0.0", 16));
    // A rekey's new pair: the tunnel is already up.
    let inb2 = sa(Direction::Inbound, 0x1003);
    t.record_larval(key(&inb2), inb2.src, now);
    assert!(t.record_sa(&inb2, true).is_none());
    assert!(t
        .record_sa(&sa(Direction::Outbound, 0x2004), true)
        .is_none());
    // The old pair goes: still up.
    for s in [&inb, &out] {
        let (removed, down) = t.remove_sa(&key(s), s.src).expect("ours");
        assert!(matches!(removed, Removed::Sa(_)));
        assert!(down.is_none());
    }
    // Deleting again: not ours any more.
    assert!(t.remove_sa(&key(&inb), inb.src).is_none());
    let (_, down) = t.remove_sa(&key(&inb2), inb2.src).expect("ours");
    assert!(down.is_none());
    let out2 = sa(Direction::Outbound, 0x2004);
    let (_, down) = t.remove_sa(&key(&out2), out2.src).expect("ours");
    let down = down.expect("down with the last SA");
    assert!(!down.up);
    assert_eq!(t.counts(), (0, 0, 0, 0));
}

#[test]
fn refused_installs_are_recorded_but_never_bring_a_tunnel_up() {
    let mut t = Table::new();
    let inb = sa(Direction::Inbound, 0x1001);
    assert!(t.record_sa(&inb, false).is_none());
    assert!(t
        .record_sa(&sa(Direction::Outbound, 0x2002), false)
        .is_none());
    let (removed, down) = t.remove_sa(&key(&inb), inb.src).expect("recorded");
    assert!(matches!(removed, Removed::Sa(r) if !r.installed));
    assert!(down.is_none());
    assert!(t.clear().is_empty());
}

#[test]
fn a_delete_must_name_the_sa_with_its_source() {
    let mut t = Table::new();
    let out = sa(Direction::Outbound, 0x2002);
    t.record_sa(&out, true);
    assert!(t.remove_sa(&key(&out), ip("203.0.113.1")).is_none());
    assert!(t.sa(&key(&out)).is_some());
}

#[test]
fn larval_spis_are_bounded_per_peer_and_in_all_and_expire() {
    let mut t = Table::new();
    let now = Instant::now();
    let peer = ip("192.0.2.2");
    for spi in 0..MAX_LARVAL_PER_PEER as u32 {
        t.larval_room(peer).expect("room");
        t.record_larval(
            SaKey {
                protocol: IpsecProtocol::Esp,
                spi: 0x1000 + spi,
                dst: ip("192.0.2.1"),
            },
            peer,
            now,
        );
    }
    assert!(t.larval_room(peer).is_err());
    assert!(t.larval_room(ip("192.0.2.3")).is_ok());
    t.expire_larval(now + Duration::from_secs(10), Duration::from_secs(60));
    assert!(t.larval_room(peer).is_err());
    t.expire_larval(now + Duration::from_secs(61), Duration::from_secs(60));
    assert!(t.larval_room(peer).is_ok());
    // In all: many peers, a few each.
    let mut t = Table::new();
    for i in 0..MAX_LARVAL as u32 {
        let p = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i / 4));
        t.record_larval(
            SaKey {
                protocol: IpsecProtocol::Esp,
                spi: 0x1000 + i,
                dst: ip("192.0.2.1"),
            },
            p,
            now,
        );
    }
    assert!(t.larval_room(ip("198.51.100.1")).is_err());
}

#[test]
fn sas_and_policies_are_bounded_per_connection_and_peer() {
    let mut t = Table::new();
    for spi in 0..MAX_SAS_PER_PEER as u32 {
        t.sa_room("c", ip("192.0.2.2")).expect("room");
        t.record_sa(&sa(Direction::Outbound, 0x2000 + spi), true);
    }
    assert!(t.sa_room("c", ip("192.0.2.2")).is_err());
    assert!(t.sa_room("c", ip("192.0.2.9")).is_ok());
    assert!(t.sa_room("other", ip("192.0.2.2")).is_ok());
    let policy = |remote: Selector| PolicySpec {
        connection: "c".into(),
        local: net("10.1.0.0", 16),
        remote,
        local_addr: ip("192.0.2.1"),
        remote_addr: ip("192.0.2.2"),
        mode: EncapMode::Tunnel,
        protocols: vec![IpsecProtocol::Esp],
        reqid: FIRST_REQID,
    };
    for i in 0..MAX_POLICIES_PER_PEER as u8 {
        let p = policy(net(&format!("10.2.{i}.0"), 24));
        t.policy_room(&p).expect("room");
        t.record_policy(&p);
    }
    // The same set again is fine; a new one is not.
    t.policy_room(&policy(net("10.2.0.0", 24))).expect("known");
    assert!(t.policy_room(&policy(net("10.2.9.0", 24))).is_err());
    let removed = t
        .remove_policy(&policy(net("10.2.0.0", 24)))
        .expect("recorded");
    assert_eq!(removed.remote, net("10.2.0.0", 24));
    assert!(t.policy_room(&policy(net("10.2.9.0", 24))).is_ok());
    assert!(t.remove_policy(&policy(net("10.2.0.0", 24))).is_none());
}
