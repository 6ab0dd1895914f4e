//! Real XFRM tests. Each test re-runs itself under `ip netns exec` in a namespace of its
//! own (`fzk<pid>-<n>`), so the host's XFRM state is never touched. Without root they are
//! skipped with a printed `SKIPPED` line.

use kernel::{
    Direction, EncapMode, EspCipher, IntegAlg, IpsecProtocol, Key, Lifetime, PolicyDir, PolicySpec,
    SaSpec, Selector, Xfrm, OWNED_REQIDS, SPI_RANGE,
};
use std::net::IpAddr;
use std::process::Command;

const CHILD_ENV: &str = "KERNEL_TEST_IN_NETNS";

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

/// Runs `body` inside a fresh network namespace: the parent test makes the namespace and
/// runs this test binary again inside it, filtered to `name`.
fn in_netns(name: &str, tag: u32, body: impl FnOnce()) {
    if std::env::var_os(CHILD_ENV).is_some() {
        body();
        return;
    }
    if !is_root() {
        println!("SKIPPED {name}: needs root for network namespaces and XFRM");
        return;
    }
    let ns = format!("fzk{}-{tag}", std::process::id());
    let ok = Command::new("ip")
        .args(["netns", "add", &ns])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        println!("SKIPPED {name}: cannot create network namespace {ns}");
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("ip")
        .args(["netns", "exec", &ns])
        .arg(&exe)
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, &ns)
        .output();
    let _ = Command::new("ip").args(["netns", "del", &ns]).status();
    let out = out.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    print!("{stdout}");
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{name} failed inside {ns}");
    assert!(
        stdout.contains("1 passed"),
        "{name} did not run inside {ns}"
    );
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn ip(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn a(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn sel(addr: &str, prefix_len: u8, protocol: u8, port: u16) -> Selector {
    Selector {
        address: a(addr),
        prefix_len,
        range_end: None,
        protocol,
        port,
    }
}

fn tunnel_policy(reqid: u32) -> PolicySpec {
    PolicySpec {
        connection: "net-a-b".into(),
        local: sel("10.1.0.0", 24, 6, 0),
        remote: sel("10.2.0.0", 24, 6, 80),
        local_addr: a("192.0.2.1"),
        remote_addr: a("192.0.2.2"),
        mode: EncapMode::Tunnel,
        protocols: vec![IpsecProtocol::Esp],
        reqid,
    }
}

fn esp_sa(direction: Direction, spi: u32, cipher: EspCipher, integ: Option<IntegAlg>) -> SaSpec {
    let (src, dst) = match direction {
        Direction::Outbound => (a("192.0.2.1"), a("192.0.2.2")),
        Direction::Inbound => (a("192.0.2.2"), a("192.0.2.1")),
    };
    let key_len = kernel::alg::cipher(cipher).map(|c| match c {
        kernel::alg::KernelCipher::Crypt { key_len, .. } => key_len,
        kernel::alg::KernelCipher::Aead { key_len, .. } => key_len,
    });
    SaSpec {
        connection: "net-a-b".into(),
        direction,
        protocol: IpsecProtocol::Esp,
        spi,
        src,
        dst,
        mode: EncapMode::Tunnel,
        udp_encap: None,
        cipher: Some(cipher),
        enc_key: Key::new(vec![0x11; key_len.unwrap()]),
        integ,
        auth_key: Key::new(vec![
            0x22;
            integ.map_or(0, |i| kernel::alg::auth(i).key_len)
        ]),
        lifetime: Lifetime {
            seconds: 3600,
            kilobytes: Some(1000),
        },
        local: sel("10.1.0.0", 24, 0, 0),
        remote: sel("10.2.0.0", 24, 0, 0),
        reqid: 0x4001,
    }
}

#[test]
fn alloc_spi_gives_distinct_spis_in_range_as_larval_sas() {
    in_netns(
        "alloc_spi_gives_distinct_spis_in_range_as_larval_sas",
        1,
        || {
            rt().block_on(async {
                let x = Xfrm::open().unwrap();
                let mut spis = Vec::new();
                for _ in 0..5 {
                    let spi = x
                        .alloc_spi(IpsecProtocol::Esp, a("192.0.2.2"), a("192.0.2.1"), None)
                        .await
                        .unwrap();
                    assert!(SPI_RANGE.contains(&spi), "spi 0x{spi:x}");
                    assert!(!(0x100..=0xfff).contains(&spi));
                    spis.push(spi);
                }
                let ah = x
                    .alloc_spi(
                        IpsecProtocol::Ah,
                        a("192.0.2.2"),
                        a("192.0.2.1"),
                        Some(0x4002),
                    )
                    .await
                    .unwrap();
                let mut sorted = spis.clone();
                sorted.sort();
                sorted.dedup();
                assert_eq!(sorted.len(), spis.len(), "SPIs repeat: {spis:x?}");

                let state = ip(&["xfrm", "state"]);
                println!("{state}");
                for spi in &spis {
                    assert!(
                        state.contains(&format!(
                            "src 192.0.2.2 dst 192.0.2.1\n\tproto esp spi 0x{spi:08x} reqid 16384"
                        )),
                        "spi 0x{spi:08x} not in\n{state}"
                    );
                }
                assert!(state.contains(&format!("proto ah spi 0x{ah:08x} reqid 16386")));

                // The larval SAs are ours: our_sas lists them (nothing has crossed them)
                // and flush_ours removes all of them.
                let ours = x.our_sas().await.unwrap();
                let mut listed: Vec<u32> = ours.iter().map(|s| s.spi).collect();
                listed.sort();
                let mut want = spis.clone();
                want.push(ah);
                want.sort();
                assert_eq!(listed, want, "{ours:?}");
                assert!(
                    ours.iter().all(|s| s.bytes == 0 && s.packets == 0),
                    "{ours:?}"
                );
                let flushed = x.flush_ours().await.unwrap();
                assert_eq!(flushed.sas, 6);
                assert_eq!(ip(&["xfrm", "state"]).trim(), "");
            });
        },
    );
}

#[test]
fn tunnel_policies_with_protocol_and_port_are_added_and_deleted() {
    in_netns(
        "tunnel_policies_with_protocol_and_port_are_added_and_deleted",
        2,
        || {
            rt().block_on(async {
                let x = Xfrm::open().unwrap();
                let spec = tunnel_policy(0x4001);
                x.add_policies(&spec).await.unwrap();
                let out = ip(&["xfrm", "policy", "list", "dir", "out"]);
                println!("{out}");
                assert!(out.contains("src 10.1.0.0/24 dst 10.2.0.0/24 proto tcp dport 80"));
                assert!(out.contains("tmpl src 192.0.2.1 dst 192.0.2.2"));
                assert!(out.contains("proto esp reqid 16385 mode tunnel"));
                for dir in ["in", "fwd"] {
                    let out = ip(&["xfrm", "policy", "list", "dir", dir]);
                    println!("{out}");
                    assert!(out.contains("src 10.2.0.0/24 dst 10.1.0.0/24 proto tcp sport 80"));
                    assert!(out.contains("tmpl src 192.0.2.2 dst 192.0.2.1"));
                    assert!(out.contains("proto esp reqid 16385 mode tunnel"));
                }
                // Adding the same policy twice is refused with EEXIST, named.
                let e = x.add_policy(&spec, PolicyDir::Out).await.unwrap_err();
                assert!(e.is_exists(), "{e}");
                assert!(
                    e.to_string().contains("out policy 10.1.0.0/24 proto 6"),
                    "{e}"
                );

                x.delete_policies(&spec).await.unwrap();
                assert_eq!(ip(&["xfrm", "policy"]).trim(), "");
                // Deleting again is harmless; deleting one direction says ENOENT.
                x.delete_policies(&spec).await.unwrap();
                let e = x.delete_policy(&spec, PolicyDir::In).await.unwrap_err();
                assert!(e.is_not_found(), "{e}");

                // Transport mode: out and in only, host selectors.
                let mut t = tunnel_policy(0x4002);
                t.mode = EncapMode::Transport;
                t.local = sel("192.0.2.1", 32, 17, 500);
                t.remote = sel("192.0.2.2", 32, 17, 0);
                x.add_policies(&t).await.unwrap();
                let out = ip(&["xfrm", "policy"]);
                println!("{out}");
                assert!(out.contains("proto esp reqid 16386 mode transport"));
                assert!(!out.contains("dir fwd"));
                assert_eq!(out.matches("dir ").count(), 2);
                x.delete_policies(&t).await.unwrap();
                assert_eq!(ip(&["xfrm", "policy"]).trim(), "");
            });
        },
    );
}

#[test]
fn esp_sa_install_is_refused_clearly_or_installed() {
    in_netns("esp_sa_install_is_refused_clearly_or_installed", 3, || {
        rt().block_on(async {
            let x = Xfrm::open().unwrap();
            let out = esp_sa(
                Direction::Outbound,
                0x1234abcd,
                EspCipher::AesCbc { key_bits: 128 },
                Some(IntegAlg::HmacSha256),
            );
            match x.add_sa(&out).await {
                Err(e) => {
                    println!("{e}");
                    assert_eq!(e.errno, Some(libc_eprotonosupport()), "{e}");
                    assert_eq!(
                        e.to_string(),
                        "kernel refused ESP SA 0x1234abcd 192.0.2.1 -> 192.0.2.2: Protocol not \
                         supported (EPROTONOSUPPORT: this kernel has no ESP support)"
                    );
                }
                Ok(()) => {
                    // A kernel with ESP: the SA is there as asked.
                    let state = ip(&["xfrm", "state"]);
                    println!("{state}");
                    assert!(state.contains("spi 0x1234abcd reqid 16385 mode tunnel"));
                    assert!(state.contains("auth-trunc hmac(sha256)"));
                    assert!(state.contains(" 128\n"));
                    assert!(state.contains("enc cbc(aes)"));
                }
            }

            // Inbound, onto an allocated SPI, with GCM.
            let spi = x
                .alloc_spi(
                    IpsecProtocol::Esp,
                    a("192.0.2.2"),
                    a("192.0.2.1"),
                    Some(0x4001),
                )
                .await
                .unwrap();
            let inb = esp_sa(
                Direction::Inbound,
                spi,
                EspCipher::AesGcm16 { key_bits: 256 },
                None,
            );
            match x.add_sa(&inb).await {
                Err(e) => {
                    // No ESP (EPROTONOSUPPORT), or ESP without GCM (ENOSYS).
                    println!("{e}");
                    assert!(matches!(e.errno, Some(93) | Some(38)), "{e}");
                    if e.errno == Some(38) {
                        assert!(e.to_string().ends_with(
                            "(ENOSYS: this kernel lacks an algorithm of the SA: rfc4106(gcm(aes)))"
                        ));
                    }
                    assert!(e.to_string().starts_with(&format!(
                        "kernel refused ESP SA 0x{spi:08x} 192.0.2.2 -> 192.0.2.1:"
                    )));
                }
                Ok(()) => {
                    let state = ip(&["xfrm", "state"]);
                    println!("{state}");
                    assert!(state.contains("aead rfc4106(gcm(aes))"));
                }
            }
            // A wrong key length is refused before the kernel sees it.
            let mut bad = esp_sa(
                Direction::Outbound,
                0x5000,
                EspCipher::TripleDes,
                Some(IntegAlg::HmacMd5),
            );
            bad.enc_key = Key::new(vec![0; 16]);
            let e = x.add_sa(&bad).await.unwrap_err();
            assert_eq!(e.errno, None);
            assert!(
                e.to_string().contains("cbc(des3_ede) needs a 24-byte key"),
                "{e}"
            );
            x.flush_ours().await.unwrap();
        });
    });
}

fn libc_eprotonosupport() -> i32 {
    93
}

#[test]
fn flush_ours_leaves_other_software_alone() {
    in_netns("flush_ours_leaves_other_software_alone", 4, || {
        rt().block_on(async {
            // Another daemon's policies (reqid 7, and one with no template) and larval SA.
            ip(&[
                "xfrm",
                "policy",
                "add",
                "src",
                "10.9.0.0/24",
                "dst",
                "10.8.0.0/24",
                "dir",
                "out",
                "tmpl",
                "src",
                "192.0.2.9",
                "dst",
                "192.0.2.8",
                "proto",
                "esp",
                "reqid",
                "7",
                "mode",
                "tunnel",
            ]);
            ip(&[
                "xfrm",
                "policy",
                "add",
                "src",
                "10.7.0.0/24",
                "dst",
                "10.6.0.0/24",
                "dir",
                "out",
            ]);
            ip(&[
                "xfrm",
                "state",
                "allocspi",
                "src",
                "192.0.2.8",
                "dst",
                "192.0.2.9",
                "proto",
                "esp",
                "reqid",
                "5",
            ]);
            let foreign_policies = ip(&["xfrm", "policy"]);
            let foreign_state = ip(&["xfrm", "state"]);

            let x = Xfrm::open().unwrap();
            x.add_policies(&tunnel_policy(0x4001)).await.unwrap();
            let mut t = tunnel_policy(0x7fff);
            t.local = sel("10.3.0.0", 16, 0, 0);
            x.add_policies(&t).await.unwrap();
            for _ in 0..2 {
                x.alloc_spi(
                    IpsecProtocol::Esp,
                    a("192.0.2.2"),
                    a("192.0.2.1"),
                    Some(0x4001),
                )
                .await
                .unwrap();
            }
            assert!(OWNED_REQIDS.contains(&0x7fff));

            let flushed = x.flush_ours().await.unwrap();
            assert_eq!(flushed.policies, 6);
            assert_eq!(flushed.sas, 2);
            let policies = ip(&["xfrm", "policy"]);
            let state = ip(&["xfrm", "state"]);
            println!("{policies}\n{state}");
            assert_eq!(policies, foreign_policies);
            assert_eq!(state, foreign_state);
            assert!(policies.contains("reqid 7 mode tunnel"));
            assert!(policies.contains("src 10.7.0.0/24 dst 10.6.0.0/24"));
            assert!(state.contains("reqid 5"));
            // Nothing of ours is left: a second flush removes nothing.
            assert_eq!(x.flush_ours().await.unwrap(), kernel::Flushed::default());
        });
    });
}

async fn next_event(ev: &mut kernel::XfrmEvents) -> kernel::XfrmEvent {
    tokio::time::timeout(std::time::Duration::from_secs(5), ev.next())
        .await
        .expect("no XFRM event within 5 s")
        .expect("event socket closed")
}

#[test]
fn acquire_and_expire_events_of_ours_reach_the_caller() {
    in_netns(
        "acquire_and_expire_events_of_ours_reach_the_caller",
        5,
        || {
            rt().block_on(async {
                ip(&["link", "add", "v0", "type", "veth", "peer", "name", "v1"]);
                ip(&["link", "set", "v0", "up"]);
                ip(&["link", "set", "v1", "up"]);
                ip(&["addr", "add", "10.1.0.1/24", "dev", "v0"]);
                ip(&["route", "add", "10.2.0.0/24", "dev", "v0"]);
                let x = Xfrm::open().unwrap();
                let mut ev = kernel::XfrmEvents::open().unwrap();

                // Someone else's policy: its acquire is not ours and is not passed on.
                ip(&[
                    "xfrm",
                    "policy",
                    "add",
                    "src",
                    "10.1.0.0/24",
                    "dst",
                    "10.2.0.0/24",
                    "proto",
                    "tcp",
                    "dir",
                    "out",
                    "tmpl",
                    "src",
                    "192.0.2.1",
                    "dst",
                    "192.0.2.7",
                    "proto",
                    "esp",
                    "reqid",
                    "7",
                    "mode",
                    "tunnel",
                ]);
                let mut spec = tunnel_policy(0x4001);
                spec.local = sel("10.1.0.0", 24, 17, 0);
                spec.remote = sel("10.2.0.0", 24, 17, 9);
                x.add_policies(&spec).await.unwrap();

                // Foreign traffic first (its ACQUIRE is queued before ours), then ours.
                let _ = std::net::TcpStream::connect_timeout(
                    &"10.2.0.5:80".parse().unwrap(),
                    std::time::Duration::from_millis(200),
                );
                let udp = std::net::UdpSocket::bind("10.1.0.1:0").unwrap();
                let _ = udp.send_to(b"x", "10.2.0.5:9");
                let e = next_event(&mut ev).await;
                assert_eq!(
                    e,
                    kernel::XfrmEvent::Acquire {
                        local: a("10.1.0.1"),
                        remote: a("10.2.0.5"),
                        protocol: 17
                    }
                );

                // A larval SA of ours dies after xfrm_acq_expires: a hard expire.
                std::fs::write("/proc/sys/net/core/xfrm_acq_expires", "1").unwrap();
                let spi = x
                    .alloc_spi(
                        IpsecProtocol::Esp,
                        a("192.0.2.2"),
                        a("192.0.2.1"),
                        Some(0x4001),
                    )
                    .await
                    .unwrap();
                loop {
                    match next_event(&mut ev).await {
                        kernel::XfrmEvent::Expire {
                            protocol,
                            spi: s,
                            dst,
                            hard,
                        } if s == spi => {
                            assert_eq!(protocol, IpsecProtocol::Esp);
                            assert_eq!(dst, a("192.0.2.1"));
                            assert!(hard);
                            break;
                        }
                        kernel::XfrmEvent::Acquire {
                            remote,
                            protocol: 17,
                            ..
                        } if remote == a("10.2.0.5") => continue,
                        other => panic!("unexpected {other:?}"),
                    }
                }
            });
        },
    );
}

#[test]
fn xfrm_requests_are_answered_and_refusals_become_failed_outcomes() {
    use kernel::{Outcome, XfrmRequest};
    in_netns(
        "xfrm_requests_are_answered_and_refusals_become_failed_outcomes",
        6,
        || {
            rt().block_on(async {
                let x = Xfrm::open().unwrap();
                let alloc = XfrmRequest::AllocSpi {
                    protocol: IpsecProtocol::Esp,
                    src: a("192.0.2.2"),
                    dst: a("192.0.2.1"),
                };
                let spi = match x.answer(&alloc).await {
                    Some(Outcome::SpiAllocated(spi)) => spi,
                    other => panic!("{other:?}"),
                };

                // AH+ESP in tunnel mode: ESP inside (transport), AH outside (tunnel).
                let mut spec = tunnel_policy(0x4003);
                spec.protocols = vec![IpsecProtocol::Ah, IpsecProtocol::Esp];
                assert_eq!(x.answer(&XfrmRequest::AddPolicy(spec.clone())).await, None);
                let out = ip(&["xfrm", "policy", "list", "dir", "out"]);
                println!("{out}");
                let esp = out.find("proto esp reqid 16387 mode transport").unwrap();
                let ah = out.find("proto ah reqid 16387 mode tunnel").unwrap();
                assert!(esp < ah);

                // An AH SA on a kernel without AH: Failed, naming the SA and AH.
                let mut sa = esp_sa(
                    Direction::Inbound,
                    spi,
                    EspCipher::TripleDes,
                    Some(IntegAlg::HmacSha1),
                );
                sa.protocol = IpsecProtocol::Ah;
                sa.cipher = None;
                match x.answer(&XfrmRequest::AddSa(sa)).await {
                    Some(Outcome::Failed(reason)) => {
                        println!("{reason}");
                        assert!(reason.starts_with(&format!(
                            "kernel refused AH SA 0x{spi:08x} 192.0.2.2 -> 192.0.2.1: "
                        )));
                        if reason.contains("EPROTONOSUPPORT") {
                            assert!(reason
                                .ends_with("(EPROTONOSUPPORT: this kernel has no AH support)"));
                        }
                    }
                    None => {} // a kernel with AH installs it
                    other => panic!("{other:?}"),
                }

                // Deleting an SA that is not there is no failure; policies go away.
                let del = XfrmRequest::DeleteSa {
                    protocol: IpsecProtocol::Esp,
                    spi: 0x7777_0000,
                    src: a("192.0.2.2"),
                    dst: a("192.0.2.1"),
                };
                assert_eq!(x.answer(&del).await, None);
                assert_eq!(x.answer(&XfrmRequest::DeletePolicy(spec)).await, None);
                assert_eq!(ip(&["xfrm", "policy"]).trim(), "");
            });
        },
    );
}

#[test]
fn ipv6_policies_and_spis_work_and_are_flushed() {
    in_netns("ipv6_policies_and_spis_work_and_are_flushed", 7, || {
        rt().block_on(async {
            let x = Xfrm::open().unwrap();
            let spec = PolicySpec {
                connection: "v6".into(),
                local: sel("2001:db8:1::", 48, 58, 0),
                remote: sel("2001:db8:2::", 48, 58, 0),
                local_addr: a("2001:db8::1"),
                remote_addr: a("2001:db8::2"),
                mode: EncapMode::Tunnel,
                protocols: vec![IpsecProtocol::Esp],
                reqid: 0x4010,
            };
            x.add_policies(&spec).await.unwrap();
            let spi = x
                .alloc_spi(
                    IpsecProtocol::Esp,
                    a("2001:db8::2"),
                    a("2001:db8::1"),
                    Some(0x4010),
                )
                .await
                .unwrap();
            let out = ip(&["-6", "xfrm", "policy", "list", "dir", "out"]);
            println!("{out}");
            assert!(out.contains("src 2001:db8:1::/48 dst 2001:db8:2::/48 proto ipv6-icmp"));
            assert!(out.contains("tmpl src 2001:db8::1 dst 2001:db8::2"));
            let state = ip(&["xfrm", "state"]);
            assert!(state.contains(&format!("proto esp spi 0x{spi:08x} reqid 16400")));
            let flushed = x.flush_ours().await.unwrap();
            assert_eq!(
                flushed,
                kernel::Flushed {
                    sas: 1,
                    policies: 3
                }
            );
            assert_eq!(ip(&["xfrm", "policy"]).trim(), "");
            assert_eq!(ip(&["xfrm", "state"]).trim(), "");
        });
    });
}

#[test]
fn address_ranges_become_several_policies_and_all_go_away() {
    in_netns(
        "address_ranges_become_several_policies_and_all_go_away",
        8,
        || {
            rt().block_on(async {
                let x = Xfrm::open().unwrap();
                let mut spec = tunnel_policy(0x4020);
                spec.local = Selector {
                    range_end: Some(a("10.1.0.6")),
                    ..sel("10.1.0.1", 0, 0, 0)
                };
                spec.remote = sel("10.2.0.0", 24, 0, 0);
                x.add_policies(&spec).await.unwrap();
                let out = ip(&["xfrm", "policy", "list", "dir", "out"]);
                println!("{out}");
                for block in ["10.1.0.1/32", "10.1.0.2/31", "10.1.0.4/31", "10.1.0.6/32"] {
                    assert!(
                        out.contains(&format!("src {block} dst 10.2.0.0/24")),
                        "{block}"
                    );
                }
                assert_eq!(ip(&["xfrm", "policy"]).matches("reqid 16416").count(), 12);
                x.delete_policies(&spec).await.unwrap();
                assert_eq!(ip(&["xfrm", "policy"]).trim(), "");

                // A failure part-way leaves nothing behind: the 3rd block is already taken.
                ip(&[
                    "xfrm",
                    "policy",
                    "add",
                    "src",
                    "10.1.0.4/31",
                    "dst",
                    "10.2.0.0/24",
                    "dir",
                    "out",
                ]);
                let e = x.add_policies(&spec).await.unwrap_err();
                assert!(e.is_exists(), "{e}");
                let left = ip(&["xfrm", "policy"]);
                assert!(!left.contains("reqid 16416"), "{left}");
            });
        },
    );
}

/// Deletes find their object by selector or SPI, which another program's object can share:
/// only ours (our reqid) is deleted, and an SA outside our reqids is never installed.
#[test]
fn deletes_and_installs_touch_only_what_is_ours() {
    in_netns("deletes_and_installs_touch_only_what_is_ours", 8, || {
        rt().block_on(async {
            // Another daemon's policy with exactly the selector of `tunnel_policy`.
            let spec = tunnel_policy(0x4001);
            ip(&[
                "xfrm",
                "policy",
                "add",
                "src",
                "10.1.0.0/24",
                "dst",
                "10.2.0.0/24",
                "proto",
                "tcp",
                "dport",
                "80",
                "dir",
                "out",
                "priority",
                "100",
                "tmpl",
                "src",
                "192.0.2.1",
                "dst",
                "192.0.2.2",
                "proto",
                "esp",
                "reqid",
                "7",
                "mode",
                "tunnel",
            ]);
            // And its larval SA.
            let larval = ip(&[
                "xfrm",
                "state",
                "allocspi",
                "src",
                "192.0.2.2",
                "dst",
                "192.0.2.1",
                "proto",
                "esp",
                "reqid",
                "5",
                "min",
                "0x5000",
                "max",
                "0x5000",
            ]);
            assert!(larval.contains("0x00005000"), "{larval}");
            let policies = ip(&["xfrm", "policy"]);
            let state = ip(&["xfrm", "state"]);

            let x = Xfrm::open().unwrap();
            let e = x.delete_policies(&spec).await.expect_err("not ours");
            assert!(e.to_string().contains("not ours"), "{e}");
            let e = x
                .delete_sa(IpsecProtocol::Esp, 0x5000, a("192.0.2.2"), a("192.0.2.1"))
                .await
                .expect_err("not ours");
            assert!(e.to_string().contains("not ours (reqid 0x5)"), "{e}");
            let mut sa = esp_sa(
                Direction::Inbound,
                0x5001,
                EspCipher::AesCbc { key_bits: 128 },
                Some(IntegAlg::HmacSha1),
            );
            sa.reqid = 7;
            let e = x.add_sa(&sa).await.expect_err("foreign reqid");
            assert!(e.to_string().contains("outside our range"), "{e}");
            assert_eq!(ip(&["xfrm", "policy"]), policies);
            assert_eq!(ip(&["xfrm", "state"]), state);

            // XFRM keeps one policy per selector and direction, whatever the priority:
            // ours cannot go in beside it, and trying changes nothing.
            let e = x.add_policies(&spec).await.expect_err("selector taken");
            assert!(e.is_exists(), "{e}");
            assert_eq!(ip(&["xfrm", "policy"]), policies);
            // Once the other program's policy is gone, ours goes in and out again.
            ip(&[
                "xfrm",
                "policy",
                "delete",
                "src",
                "10.1.0.0/24",
                "dst",
                "10.2.0.0/24",
                "proto",
                "tcp",
                "dport",
                "80",
                "dir",
                "out",
            ]);
            x.add_policies(&spec).await.unwrap();
            x.delete_policies(&spec).await.unwrap();
            assert!(!ip(&["xfrm", "policy"]).contains("10.2.0.0/24"));
            // Nothing there at all is "already gone", as before.
            let mut gone = spec.clone();
            gone.remote = sel("10.99.0.0", 24, 0, 0);
            x.delete_policies(&gone).await.unwrap();
        });
    });
}
