//! A compromised child against the parent: the test plays the child on the child's end of
//! a real socketpair and sends, frame by frame, what an attacker in the child would, to the
//! parent's own message handling (`privsep::parent::state`) backed by real XFRM in a
//! network namespace of the test's own. Each attack is refused and logged (rate-limited),
//! and the kernel and the filesystem are unchanged; the same requests of an honest child
//! are carried out, so a parent that refused everything would fail here too.
//!
//! Each test runs itself again under `ip netns exec` in a fresh namespace; without root it
//! is skipped with a printed reason.

use ike::crypto::Secret;
use ike::engine::{Direction, KernelEvent, KernelRequest, PolicySpec, RequestId, SaSpec, Selector};
use ike::policy::{EncapMode, EspCipher, IntegAlg, IpsecProtocol, Lifetime};
use privsep::cmdline::Options;
use privsep::ipc::AsyncChannel;
use privsep::parent::state::ParentState;
use privsep::proto::{ToChild, ToParent};
use privsep::sadb::Sadb;
use serde::Serialize;
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const CHILD_ENV: &str = "HOSTILE_CHILD_IN_NETNS";

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

/// Run `body` in a fresh network namespace where 192.0.2.1 is ours (on the loopback).
fn in_netns(name: &str, tag: u32, body: impl FnOnce()) {
    if std::env::var_os(CHILD_ENV).is_some() {
        for args in [
            &["link", "set", "lo", "up"][..],
            &["addr", "add", "192.0.2.1/32", "dev", "lo"],
        ] {
            ip(args);
        }
        body();
        return;
    }
    if !is_root() {
        println!("SKIPPED {name}: needs root for network namespaces and XFRM");
        return;
    }
    let ns = format!("fzhc{}-{tag}", std::process::id());
    let ok = Command::new("ip")
        .args(["netns", "add", &ns])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        println!("SKIPPED {name}: cannot create network namespace {ns}");
        return;
    }
    let exe = std::env::current_exe().expect("test binary");
    let out = Command::new("ip")
        .args(["netns", "exec", &ns])
        .arg(&exe)
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, &ns)
        .output();
    let _ = Command::new("ip").args(["netns", "del", &ns]).status();
    let out = out.expect("run the test in the namespace");
    let stdout = String::from_utf8_lossy(&out.stdout);
    print!("{stdout}");
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{name} failed inside {ns}");
    assert!(
        stdout.contains("1 passed"),
        "{name} did not run inside {ns}"
    );
}

fn ip(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn a(s: &str) -> IpAddr {
    s.parse().expect("address")
}

fn net(addr: &str, len: u8) -> Selector {
    Selector {
        prefix_len: len,
        ..Selector::host(a(addr))
    }
}

/// The daemon's log, as the parent writes it.
fn capture_log() -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&lines);
    privsep::log::init(
        privsep::log::Target::Sink(Arc::new(move |_, l: &str| {
            if let Ok(mut v) = sink.lock() {
                v.push(l.to_string());
            }
        })),
        true,
        &[],
    );
    lines
}

fn count(log: &Arc<Mutex<Vec<String>>>, needle: &str) -> usize {
    log.lock()
        .map(|l| l.iter().filter(|x| x.contains(needle)).count())
        .unwrap_or(0)
}

/// A run directory of the test under /var/run, removed at the end.
struct RunDir(PathBuf);

impl RunDir {
    fn new(tag: &str) -> RunDir {
        let d = PathBuf::from(format!("/var/run/fzhc{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("run dir");
        RunDir(d)
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The parent of `conf` (its updown script writes `marker`), with options pointing into
/// `dir`, and the child's end of its channel.
async fn parent(dir: &Path, no_kernel: bool) -> (ParentState, AsyncChannel, AsyncChannel) {
    let marker = dir.join("updown-ran");
    let script = dir.join("updown.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nsleep 0.2\necho \"$PLUTO_VERB $PLUTO_PEER_CLIENT\" >> {}\n",
            marker.display()
        ),
    )
    .expect("script");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let conf_text = format!(
        "[General]\nRetransmits=3\n[Phase 1]\n192.0.2.2=peer-west\n[Phase 2]\nConnections=east-west\n\
         [peer-west]\nPhase=1\nAddress=192.0.2.2\nLocal-address=192.0.2.1\nAuthentication=hostile-test-psk-0123456789\n\
         [east-west]\nPhase=2\nISAKMP-peer=peer-west\nConfiguration=qm\nLocal-ID=net-east\nRemote-ID=net-west\nUpdown={}\n\
         [net-east]\nID-type=IPV4_ADDR_SUBNET\nNetwork=10.1.0.0\nNetmask=255.255.0.0\n\
         [net-west]\nID-type=IPV4_ADDR_SUBNET\nNetwork=10.2.0.0\nNetmask=255.255.0.0\n\
         [qm]\nDOI=IPSEC\nEXCHANGE_TYPE=QUICK_MODE\nSuites=QM-ESP-AES-128-SHA-SUITE\n",
        script.display()
    );
    let conf_path = dir.join("isakmpd.conf");
    std::fs::write(&conf_path, &conf_text).expect("conf");
    std::fs::set_permissions(&conf_path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let loaded = privsep::config::read(&conf_path).expect("configuration");
    let mut opts = Options {
        config: conf_path,
        report: dir.join("isakmpd.report"),
        no_kernel,
        ..Options::default()
    };
    opts.packet_log = None;
    let sadb = Sadb::open(no_kernel, true).await.expect("kernel");
    let (p, c) = privsep::ipc::socketpair().expect("socketpair");
    // As the parent makes it: the child may pass no descriptor.
    let parent_end =
        AsyncChannel::with_limits(p, privsep::ipc::DEFAULT_MAX_FRAME, 0).expect("channel");
    let child_end = AsyncChannel::new(c).expect("channel");
    (ParentState::new(opts, loaded, sadb), parent_end, child_end)
}

/// The child's end sends `msg`; the parent takes it off the channel and handles it.
async fn deliver<T: Serialize>(
    st: &mut ParentState,
    parent_end: &mut AsyncChannel,
    child_end: &AsyncChannel,
    msg: &T,
) -> Result<(), privsep::ipc::IpcError> {
    child_end.send(msg).await.expect("send");
    let m = parent_end.recv::<ToParent>().await?;
    st.on_child(m, parent_end).await;
    Ok(())
}

/// The answer the parent sent the child, if any came within a moment.
async fn answer(child_end: &mut AsyncChannel) -> Option<ToChild> {
    tokio::time::timeout(Duration::from_millis(200), child_end.recv::<ToChild>())
        .await
        .ok()
        .and_then(Result::ok)
}

fn kernel(id: u64, request: KernelRequest) -> ToParent {
    ToParent::Kernel {
        id: RequestId(id),
        request: Box::new(request),
    }
}

fn esp_sa(direction: Direction, spi: u32) -> SaSpec {
    let (src, dst) = match direction {
        Direction::Inbound => (a("192.0.2.2"), a("192.0.2.1")),
        Direction::Outbound => (a("192.0.2.1"), a("192.0.2.2")),
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
        enc_key: Secret::new(vec![0x11; 16]),
        integ: Some(IntegAlg::HmacSha1),
        auth_key: Secret::new(vec![0x22; 20]),
        lifetime: Lifetime {
            seconds: 1200,
            kilobytes: None,
        },
        local: net("10.1.0.0", 16),
        remote: net("10.2.0.0", 16),
        reqid: 0x4001,
    }
}

fn tunnel_policy() -> PolicySpec {
    PolicySpec {
        connection: "east-west".into(),
        local: net("10.1.0.0", 16),
        remote: net("10.2.0.0", 16),
        local_addr: a("192.0.2.1"),
        remote_addr: a("192.0.2.2"),
        mode: EncapMode::Tunnel,
        protocols: vec![IpsecProtocol::Esp],
        // The child names a reqid of another program: the parent uses its own.
        reqid: 7,
    }
}

fn refused(m: Option<ToChild>) -> String {
    match m {
        Some(ToChild::Kernel(KernelEvent::Failed { reason, .. })) => {
            assert!(reason.starts_with("refused by the parent: "), "{reason}");
            reason
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// The messages of the protocol as it was, with which a child could change the parent's
/// configuration, open files and run scripts. They must do nothing now. Variants that are
/// never sent are there for the encoding indices of those that are.
#[allow(dead_code)]
mod old {
    use serde::Serialize;
    use std::net::SocketAddr;

    #[derive(Serialize)]
    pub enum ConfigOp {
        Set {
            section: String,
            tag: String,
            value: String,
            force: bool,
        },
    }

    #[derive(Serialize)]
    pub enum PacketCapture {
        On(Option<std::path::PathBuf>),
    }

    #[derive(Serialize)]
    pub enum ParentCommand {
        Config(ConfigOp),
        Reload,
        Quit,
        Debug(u8),
        Result(String),
        Capture(PacketCapture),
    }

    #[derive(Serialize)]
    pub struct Request {
        pub connection: String,
        pub up: bool,
        pub me: std::net::IpAddr,
        pub peer: std::net::IpAddr,
    }

    #[derive(Serialize)]
    pub enum ToParent {
        Ready,
        NewHelper,
        Report(String),
        Fifo(ParentCommand),
        Packet {
            from: SocketAddr,
            to: SocketAddr,
            bytes: Vec<u8>,
        },
        Updown(Request),
    }
}

#[test]
fn hostile_kernel_requests_are_refused_and_change_nothing() {
    in_netns(
        "hostile_kernel_requests_are_refused_and_change_nothing",
        1,
        || {
            let log = capture_log();
            let dir = RunDir::new("kernel");
            rt().block_on(async {
                let (mut st, mut parent_end, mut child_end) = parent(&dir.0, false).await;
                // Another program's SA and policy, which the child will try to remove.
                ip(&[
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
                ip(&[
                    "xfrm",
                    "policy",
                    "add",
                    "src",
                    "10.8.0.0/24",
                    "dst",
                    "10.9.0.0/24",
                    "dir",
                    "out",
                    "tmpl",
                    "src",
                    "192.0.2.1",
                    "dst",
                    "192.0.2.9",
                    "proto",
                    "esp",
                    "reqid",
                    "7",
                    "mode",
                    "tunnel",
                ]);
                let policies = ip(&["xfrm", "policy"]);
                let state = ip(&["xfrm", "state"]);

                let mut zero = tunnel_policy();
                zero.local = net("0.0.0.0", 0);
                zero.remote = net("0.0.0.0", 0);
                let mut outside = tunnel_policy();
                outside.remote = net("10.0.0.0", 8);
                let mut sa_outside = esp_sa(Direction::Outbound, 0x6001);
                sa_outside.remote = net("0.0.0.0", 0);
                let mut sa_elsewhere = esp_sa(Direction::Outbound, 0x6002);
                sa_elsewhere.dst = a("203.0.113.66");
                let mut foreign_policy = tunnel_policy();
                foreign_policy.local = net("10.8.0.0", 24);
                foreign_policy.remote = net("10.9.0.0", 24);
                let attacks = [
                    ("a 0/0 policy", KernelRequest::AddPolicy(zero)),
                    (
                        "a policy wider than the IDs",
                        KernelRequest::AddPolicy(outside),
                    ),
                    ("an SA with 0/0 selectors", KernelRequest::AddSa(sa_outside)),
                    (
                        "an SA to another address",
                        KernelRequest::AddSa(sa_elsewhere),
                    ),
                    (
                        "an inbound SA on an SPI never allocated",
                        KernelRequest::AddSa(esp_sa(Direction::Inbound, 0x6003)),
                    ),
                    (
                        "a delete of another program's SA",
                        KernelRequest::DeleteSa {
                            protocol: IpsecProtocol::Esp,
                            spi: 0x5000,
                            src: a("192.0.2.2"),
                            dst: a("192.0.2.1"),
                        },
                    ),
                    (
                        "a delete of another program's policy",
                        KernelRequest::DeletePolicy(foreign_policy),
                    ),
                    (
                        "an SPI for a stranger",
                        KernelRequest::AllocSpi {
                            protocol: IpsecProtocol::Esp,
                            src: a("203.0.113.66"),
                            dst: a("192.0.2.1"),
                        },
                    ),
                ];
                for (i, (what, r)) in attacks.iter().enumerate() {
                    deliver(
                        &mut st,
                        &mut parent_end,
                        &child_end,
                        &kernel(i as u64, r.clone()),
                    )
                    .await
                    .expect("a well-formed frame");
                    let reason = refused(answer(&mut child_end).await);
                    println!("{what}: {reason}");
                    assert_eq!(
                        ip(&["xfrm", "policy"]),
                        policies,
                        "{what} changed the policies"
                    );
                    assert_eq!(ip(&["xfrm", "state"]), state, "{what} changed the SAs");
                }
                assert_eq!(
                    count(&log, "refused the child's kernel request"),
                    attacks.len()
                );

                // A flood of them: refused alike, the log rate-limited.
                for i in 0..1000 {
                    let mut p = tunnel_policy();
                    p.remote = net("0.0.0.0", 0);
                    deliver(
                        &mut st,
                        &mut parent_end,
                        &child_end,
                        &kernel(100 + i, KernelRequest::AddPolicy(p)),
                    )
                    .await
                    .expect("frame");
                    refused(answer(&mut child_end).await);
                }
                let lines = count(&log, "refused the child's kernel request");
                assert!(
                    lines <= privsep::ratelimit::BURST as usize,
                    "{lines} lines for 1008 refusals"
                );
                assert_eq!(st.authority.refused, 1008);
                assert_eq!(ip(&["xfrm", "policy"]), policies);

                // The honest child's requests are carried out: an SPI for the peer, the
                // connection's policies, under the parent's reqid (not the 7 it named).
                deliver(
                    &mut st,
                    &mut parent_end,
                    &child_end,
                    &kernel(
                        2000,
                        KernelRequest::AllocSpi {
                            protocol: IpsecProtocol::Esp,
                            src: a("192.0.2.2"),
                            dst: a("192.0.2.1"),
                        },
                    ),
                )
                .await
                .expect("frame");
                let spi = match answer(&mut child_end).await {
                    Some(ToChild::Kernel(KernelEvent::SpiAllocated { spi, .. })) => spi,
                    other => panic!("no SPI: {other:?}"),
                };
                assert!(ip(&["xfrm", "state"]).contains(&format!("spi 0x{spi:08x} reqid 16384")));
                deliver(
                    &mut st,
                    &mut parent_end,
                    &child_end,
                    &kernel(2001, KernelRequest::AddPolicy(tunnel_policy())),
                )
                .await
                .expect("frame");
                assert!(
                    answer(&mut child_end).await.is_none(),
                    "a policy install is not answered"
                );
                let now = ip(&["xfrm", "policy"]);
                assert!(now.contains("src 10.1.0.0/16 dst 10.2.0.0/16"), "{now}");
                assert!(
                    now.contains("reqid 16385"),
                    "not under the parent's reqid: {now}"
                );
                // The policy of the other program is still there, and the child may delete
                // only the one the parent installed.
                deliver(
                    &mut st,
                    &mut parent_end,
                    &child_end,
                    &kernel(2002, KernelRequest::DeletePolicy(tunnel_policy())),
                )
                .await
                .expect("frame");
                answer(&mut child_end).await;
                assert_eq!(ip(&["xfrm", "policy"]), policies);
                deliver(
                    &mut st,
                    &mut parent_end,
                    &child_end,
                    &kernel(2003, KernelRequest::DeletePolicy(tunnel_policy())),
                )
                .await
                .expect("frame");
                refused(answer(&mut child_end).await);
            });
        },
    );
}

#[test]
fn the_child_cannot_configure_open_files_or_run_scripts() {
    in_netns(
        "the_child_cannot_configure_open_files_or_run_scripts",
        2,
        || {
            let log = capture_log();
            let dir = RunDir::new("config");
            rt().block_on(async {
                let (mut st, mut parent_end, child_end) = parent(&dir.0, true).await;
                let before = st.loaded.conf.dump();
                let precious = dir.0.join("precious");
                std::fs::write(&precious, b"keep me").expect("write");
                let link = dir.0.join("capture.pcap");
                std::os::unix::fs::symlink(&precious, &link).expect("symlink");
                let set = |tag: &str, value: &str| {
                    old::ToParent::Fifo(old::ParentCommand::Config(old::ConfigOp::Set {
                        section: if tag == "Default" {
                            "Phase 1".into()
                        } else {
                            "General".into()
                        },
                        tag: tag.into(),
                        value: value.into(),
                        force: true,
                    }))
                };
                let marker = dir.0.join("updown-ran");
                let attacks = vec![
                    set("Updown", &format!("touch {}", marker.display())),
                    set("Default", "peer-west"),
                    set("Private-key", "/etc/shadow"),
                    old::ToParent::Fifo(old::ParentCommand::Capture(old::PacketCapture::On(Some(
                        link.clone(),
                    )))),
                    old::ToParent::Fifo(old::ParentCommand::Reload),
                    old::ToParent::Fifo(old::ParentCommand::Quit),
                    old::ToParent::Fifo(old::ParentCommand::Result(
                        "text for the result file".into(),
                    )),
                ];
                for m in &attacks {
                    // Whether the frame decodes as something else or not at all, nothing may
                    // follow from it.
                    let _ = deliver(&mut st, &mut parent_end, &child_end, m).await;
                }
                // A report the parent never asked for: refused, no file written.
                deliver(
                    &mut st,
                    &mut parent_end,
                    &child_end,
                    &ToParent::Report {
                        kind: privsep::proto::ReportKind::State,
                        text: "an unasked report".into(),
                    },
                )
                .await
                .expect("frame");
                // 10,000 updown requests of the old protocol: none decodes, no thread starts.
                let threads = || {
                    std::fs::read_dir("/proc/self/task")
                        .map(|r| r.count())
                        .unwrap_or(0)
                };
                let before_threads = threads();
                let mut undecodable = 0;
                for _ in 0..10_000 {
                    let r = old::ToParent::Updown(old::Request {
                        connection: "east-west".into(),
                        up: true,
                        me: a("192.0.2.1"),
                        peer: a("10.99.0.1"),
                    });
                    if deliver(&mut st, &mut parent_end, &child_end, &r)
                        .await
                        .is_err()
                    {
                        undecodable += 1;
                    }
                }
                assert_eq!(undecodable, 10_000);
                assert!(
                    threads() <= before_threads,
                    "{} threads, {before_threads} before",
                    threads()
                );
                std::thread::sleep(Duration::from_millis(500));
                assert_eq!(st.loaded.conf.dump(), before, "the configuration changed");
                assert!(!marker.exists(), "a script ran");
                assert_eq!(std::fs::read(&precious).expect("read"), b"keep me");
                assert!(std::fs::symlink_metadata(&link)
                    .expect("link")
                    .file_type()
                    .is_symlink());
                assert!(!st.capturing());
                assert!(!dir.0.join("isakmpd.report").exists());
                assert!(!dir.0.join("isakmpd.result").exists());
                assert!(
                    count(&log, "refused a message of the child") >= 1,
                    "the unasked report was not logged"
                );
            });
        },
    );
}

#[test]
fn updown_runs_from_the_parents_table_through_a_bounded_queue() {
    in_netns(
        "updown_runs_from_the_parents_table_through_a_bounded_queue",
        3,
        || {
            let log = capture_log();
            let dir = RunDir::new("updown");
            rt().block_on(async {
                // -n: the table works the same, and SAs "go in" on this kernel without ESP.
                let (mut st, mut parent_end, mut child_end) = parent(&dir.0, true).await;
                let threads = || {
                    std::fs::read_dir("/proc/self/task")
                        .map(|r| r.count())
                        .unwrap_or(0)
                };
                let before_threads = threads();
                let mut id = 0;
                let mut next = || {
                    id += 1;
                    id
                };
                // 10,000 tunnels up and down, as fast as a child can ask.
                for round in 0..10_000u32 {
                    deliver(
                        &mut st,
                        &mut parent_end,
                        &child_end,
                        &kernel(
                            next(),
                            KernelRequest::AllocSpi {
                                protocol: IpsecProtocol::Esp,
                                src: a("192.0.2.2"),
                                dst: a("192.0.2.1"),
                            },
                        ),
                    )
                    .await
                    .expect("frame");
                    let spi = match answer(&mut child_end).await {
                        Some(ToChild::Kernel(KernelEvent::SpiAllocated { spi, .. })) => spi,
                        other => panic!("round {round}: {other:?}"),
                    };
                    let inbound = esp_sa(Direction::Inbound, spi);
                    let outbound = esp_sa(Direction::Outbound, 0x10_0000 + round);
                    for s in [&inbound, &outbound] {
                        deliver(
                            &mut st,
                            &mut parent_end,
                            &child_end,
                            &kernel(next(), KernelRequest::AddSa(s.clone())),
                        )
                        .await
                        .expect("frame");
                        assert!(matches!(
                            answer(&mut child_end).await,
                            Some(ToChild::Kernel(KernelEvent::Installed { .. }))
                        ));
                    }
                    for s in [&inbound, &outbound] {
                        deliver(
                            &mut st,
                            &mut parent_end,
                            &child_end,
                            &kernel(
                                next(),
                                KernelRequest::DeleteSa {
                                    protocol: s.protocol,
                                    spi: s.spi,
                                    src: s.src,
                                    dst: s.dst,
                                },
                            ),
                        )
                        .await
                        .expect("frame");
                    }
                    assert!(
                        threads() <= before_threads + 2 * privsep::updown_queue::WORKERS + 2,
                        "round {round}: {} threads ({before_threads} before)",
                        threads()
                    );
                }
                // Up and down of a tunnel whose earlier run has not started cancel out: the
                // queue never grows, and what ran leaves the tunnel as it is now, down.
                assert_eq!(count(&log, "runs already waiting"), 0);
                let started = std::time::Instant::now();
                assert!(st.updown.drain(started + Duration::from_secs(60)));
                let ran = std::fs::read_to_string(dir.0.join("updown-ran")).unwrap_or_default();
                println!(
                    "{} script lines ran for 10,000 ups and downs",
                    ran.lines().count()
                );
                // What did run, ran with the parent's record: the connection's selectors.
                assert!(ran.lines().count() >= 5, "{ran}");
                assert!(ran.lines().all(|l| l.ends_with(" 10.2.0.0/16")), "{ran}");
                assert!(
                    ran.starts_with("prepare-client 10.2.0.0/16\nroute-client"),
                    "{ran}"
                );
                assert!(
                    ran.trim_end().ends_with("unroute-client 10.2.0.0/16"),
                    "{ran}"
                );
            });
        },
    );
}

/// The child never passes a descriptor to the parent: one that comes anyway is closed at
/// once (the parent keeps nothing the child hands it) and the channel is given up.
#[test]
fn descriptors_the_child_passes_are_closed_and_end_the_channel() {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    use std::io::IoSlice;
    use std::os::fd::AsRawFd;
    rt().block_on(async {
        let (p, c) = privsep::ipc::socketpair().expect("socketpair");
        let mut parent_end =
            AsyncChannel::with_limits(p, privsep::ipc::DEFAULT_MAX_FRAME, 0).expect("channel");
        // Close-on-exec: other tests in this binary run scripts, which must not inherit it.
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).expect("pipe");
        let w2 = w.try_clone().expect("dup");
        // A well-formed `Ready` that announces no descriptor, with two attached.
        let frame =
            privsep::ipc::encode_frame(&ToParent::Ready, 0, privsep::ipc::DEFAULT_MAX_FRAME)
                .expect("frame");
        let fds = [w.as_raw_fd(), w2.as_raw_fd()];
        let cmsg = [ControlMessage::ScmRights(&fds)];
        sendmsg::<()>(
            c.as_raw_fd(),
            &[IoSlice::new(&frame)],
            &cmsg,
            MsgFlags::empty(),
            None,
        )
        .expect("sendmsg");
        drop((w, w2));
        match parent_end.recv::<ToParent>().await {
            Err(privsep::ipc::IpcError::UnexpectedFds { got }) => assert_eq!(got, 2),
            other => panic!("accepted: {other:?}"),
        }
        // The parent holds neither: the pipe's read end sees its end of file.
        nix::fcntl::fcntl(
            r.as_raw_fd(),
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        )
        .expect("nonblocking");
        // Another test's script being spawned holds a copy of every descriptor for the
        // moment between its fork and its exec, so the end of file may come a little later;
        // a descriptor the parent kept would hold it off for good.
        let mut buf = [0u8; 1];
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let end = loop {
            match nix::unistd::read(r.as_raw_fd(), &mut buf) {
                Err(nix::errno::Errno::EAGAIN) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                other => break other,
            }
        };
        assert_eq!(end, Ok(0), "a write end is still open");
        // And the channel stays broken: nothing more is taken from it.
        assert!(parent_end.recv::<ToParent>().await.is_err());
    });
}
