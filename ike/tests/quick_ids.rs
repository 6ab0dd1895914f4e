//! Quick Mode replies that name the gateways although our offer had no client IDs, as
//! strongSwan's do in transport mode with NAT-T: accepted when they name the two gateways
//! (behind a NAT, the NATed side as any single host), refused for anything wider.

use ike::codec::{IdPayload, Identity};
use ike::engine::{gateway_ids, Gateways};
use std::net::{IpAddr, Ipv4Addr};

fn host(a: [u8; 4]) -> IdPayload {
    IdPayload {
        protocol: 0,
        port: 0,
        identity: Identity::Ipv4(Ipv4Addr::from(a)),
    }
}

fn subnet(a: [u8; 4], m: [u8; 4]) -> IdPayload {
    IdPayload {
        protocol: 0,
        port: 0,
        identity: Identity::Ipv4Subnet(Ipv4Addr::from(a), Ipv4Addr::from(m)),
    }
}

fn gw(nat_local: bool, nat_remote: bool) -> Gateways {
    Gateways {
        local: IpAddr::from([192, 0, 2, 1]),
        remote: IpAddr::from([198, 51, 100, 2]),
        nat_local,
        nat_remote,
    }
}

#[test]
fn ids_naming_the_gateways_are_what_no_ids_mean() {
    let (us, them) = (host([192, 0, 2, 1]), host([198, 51, 100, 2]));
    assert!(gateway_ids(&us, &them, &gw(false, false)));
    // A /32 subnet is the same single host.
    let us32 = subnet([192, 0, 2, 1], [255, 255, 255, 255]);
    assert!(gateway_ids(&us32, &them, &gw(false, false)));
    // Swapped, or someone else: no.
    assert!(!gateway_ids(&them, &us, &gw(false, false)));
    assert!(!gateway_ids(
        &host([192, 0, 2, 9]),
        &them,
        &gw(false, false)
    ));
}

#[test]
fn behind_a_nat_the_natted_side_may_carry_its_public_address() {
    let public = host([203, 0, 113, 7]);
    let them = host([198, 51, 100, 2]);
    assert!(!gateway_ids(&public, &them, &gw(false, false)));
    assert!(gateway_ids(&public, &them, &gw(true, false)));
    assert!(gateway_ids(
        &host([192, 0, 2, 1]),
        &public,
        &gw(false, true)
    ));
}

#[test]
fn wider_ids_or_ports_are_not_the_gateways() {
    let them = host([198, 51, 100, 2]);
    let net = subnet([192, 0, 2, 0], [255, 255, 255, 0]);
    assert!(!gateway_ids(&net, &them, &gw(true, true)));
    let mut tcp = host([192, 0, 2, 1]);
    tcp.protocol = 6;
    assert!(!gateway_ids(&tcp, &them, &gw(false, false)));
}
