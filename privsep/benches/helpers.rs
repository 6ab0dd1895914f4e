//! Negotiations per second against a real isakmpd responder with 0, 1 and 2 crypto helpers,
//! measured in one run. The load generator is this process: initiator engines of the `ike`
//! crate (crypto inline) that each bring up Main Mode and Quick Mode over UDP on loopback,
//! several in flight at once, each time with a fresh ISAKMP SA.
//!
//! `cargo bench -p privsep --bench helpers [-- SECONDS]` (as root: the daemon drops
//! privileges and chroots). Only 127.0.0.0/8 is used.

use ike::conf::Conf;
use ike::crypto::{serve, CryptoResult, SecretStore};
use ike::engine::{Engine, EngineConfig, Event, KernelEvent, KernelRequest, OsRng, Output, Timers};
use ike::policy::Policy;
use openssl::pkey::{PKey, Private};
use std::net::UdpSocket;
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PSK: &str = "bench-psk-0123456789abcdef";
const DAEMON: &str = "127.0.0.1";
/// Negotiations in flight at once.
const IN_FLIGHT: usize = 32;

/// The daemon knows the load generator's hosts only through `[Phase 1] Default`, as road
/// warriors; each in-flight negotiation comes from its own loopback address.
fn daemon_conf() -> String {
    format!(
        "[General]\nRetransmits=5\n[Phase 1]\nDefault=peer\n[Phase 2]\nPassive-connections=conn\n\
         [peer]\nPhase=1\nConfiguration=mm\nAuthentication={PSK}\n\
         [mm]\nEXCHANGE_TYPE=ID_PROT\nTransforms=AES-128-SHA-GRP14\n\
         [conn]\nPhase=2\nISAKMP-peer=peer\nConfiguration=qm\nLocal-ID=server\nRemote-ID=client\n\
         [server]\nID-type=IPV4_ADDR\nAddress=10.9.0.1\n[client]\nID-type=IPV4_ADDR\nAddress=10.9.0.2\n\
         [qm]\nEXCHANGE_TYPE=QUICK_MODE\nSuites=QM-ESP-AES-SHA-SUITE\n"
    )
}

/// One load-generator host: initiator of `conn` from `me` to the daemon.
fn client_conf(me: &str, port: u16) -> String {
    format!(
        "[General]\nRetransmits=5\n[Phase 1]\n{DAEMON}=peer\n[Phase 2]\nConnections=conn\n\
         [peer]\nPhase=1\nLocal-address={me}\nAddress={DAEMON}\nPort={port}\nConfiguration=mm\nAuthentication={PSK}\n\
         [mm]\nEXCHANGE_TYPE=ID_PROT\nTransforms=AES-128-SHA-GRP14\n\
         [conn]\nPhase=2\nISAKMP-peer=peer\nConfiguration=qm\nLocal-ID=client\nRemote-ID=server\n\
         [server]\nID-type=IPV4_ADDR\nAddress=10.9.0.1\n[client]\nID-type=IPV4_ADDR\nAddress=10.9.0.2\n\
         [qm]\nEXCHANGE_TYPE=QUICK_MODE\nSuites=QM-ESP-AES-SHA-SUITE\n"
    )
}

struct Psk;
impl SecretStore for Psk {
    fn psk(&self, _: &str) -> Option<&[u8]> {
        Some(PSK.as_bytes())
    }
    fn rsa_key(&self, _: &str) -> Option<&PKey<Private>> {
        None
    }
}

struct Daemon(Child, std::path::PathBuf);
impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

fn start_daemon(helpers: usize, port: u16) -> Daemon {
    let dir = std::path::PathBuf::from(format!(
        "/var/run/isakmpd-bench-{}-{helpers}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("run dir");
    let c = dir.join("isakmpd.conf");
    std::fs::write(&c, daemon_conf()).expect("conf");
    std::fs::set_permissions(&c, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let child = Command::new(env!("CARGO_BIN_EXE_isakmpd"))
        .args([
            "-d",
            "-n",
            "-4",
            "-T",
            "-p",
            &port.to_string(),
            "-j",
            &helpers.to_string(),
            "-c",
        ])
        .arg(&c)
        .arg("-i")
        .arg(dir.join("isakmpd.pid"))
        .arg("-f")
        .arg(dir.join("isakmpd.fifo"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("daemon");
    std::thread::sleep(Duration::from_millis(500));
    Daemon(child, dir)
}

/// One initiator engine per slot; a slot that finishes starts again with a new engine.
fn new_engine(policy: &Policy, me: std::net::IpAddr, port: u16) -> Engine {
    let cfg = EngineConfig {
        policy: policy.clone(),
        timers: Timers::default(),
        local_addresses: vec![me],
        ike_port: port,
        natt_port: 4500,
        passive: false,
    };
    let mut e = Engine::new(cfg, Box::new(OsRng), Instant::now());
    e.start_active(Instant::now());
    e
}

fn measure(helpers: usize, port: u16, seconds: u64) -> (f64, usize) {
    let _daemon = start_daemon(helpers, port);
    // Every slot is its own host (127.0.1.N) with its own socket.
    let mut slots: Vec<(UdpSocket, Policy, Engine)> = (0..IN_FLIGHT)
        .map(|i| {
            let me = format!("127.0.1.{}", i + 1);
            let s = UdpSocket::bind((me.as_str(), 0)).expect("bind");
            s.set_nonblocking(true).expect("nonblocking");
            let mut p = Policy::from_conf(&Conf::parse(&client_conf(&me, port)).expect("conf"))
                .expect("policy");
            p.peers[0].local_address = Some(s.local_addr().expect("addr"));
            let e = new_engine(&p, s.local_addr().expect("addr").ip(), port);
            (s, p, e)
        })
        .collect();
    let start = Instant::now();
    let end = start + Duration::from_secs(seconds);
    let mut done = 0usize;
    let mut buf = vec![0u8; 65535];
    let mut spi = 0x10000u32;
    while Instant::now() < end {
        let mut idle = true;
        for (sock, policy, engine) in slots.iter_mut() {
            let now = Instant::now();
            while let Ok((n, from)) = sock.recv_from(&mut buf) {
                idle = false;
                engine.handle_datagram(now, sock.local_addr().expect("addr"), from, &buf[..n]);
            }
            engine.handle_timeout(now);
            let mut up = false;
            while let Some(out) = engine.poll_output() {
                match out {
                    Output::Transmit(t) => {
                        let _ = sock.send_to(&t.bytes, t.to);
                    }
                    Output::Crypto { id, request } => {
                        let r: CryptoResult = serve(&request, &Psk);
                        engine.handle_crypto(now, id, r);
                    }
                    Output::Kernel {
                        id,
                        request: KernelRequest::AllocSpi { .. },
                    } => {
                        spi += 1;
                        engine.handle_kernel(now, KernelEvent::SpiAllocated { id, spi });
                    }
                    Output::Kernel {
                        id,
                        request: KernelRequest::AddSa(_),
                    } => engine.handle_kernel(now, KernelEvent::Installed { id }),
                    Output::Event(Event::Phase2Up { .. }) => up = true,
                    _ => {}
                }
            }
            if up {
                done += 1;
                *engine = new_engine(policy, sock.local_addr().expect("addr").ip(), port);
            }
        }
        if idle {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    (done as f64 / start.elapsed().as_secs_f64(), done)
}

fn main() {
    let root = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"));
    if !root {
        println!("SKIPPED: the daemon must run as root (privilege drop, chroot)");
        return;
    }
    let seconds: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(10);
    println!(
        "Main Mode + Quick Mode (AES-128 SHA1 MODP2048, PSK) against isakmpd -n on loopback, \
         {IN_FLIGHT} in flight, {seconds} s each; the load generator shares the machine's {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!("{:<10} {:>12} {:>10}", "helpers", "neg/s", "total");
    let mut base = None;
    for (i, helpers) in [0usize, 1, 2].into_iter().enumerate() {
        let (rate, n) = measure(helpers, 50500 + i as u16, seconds);
        let ratio = base.map_or(String::new(), |b: f64| {
            format!("  ({:.2}x of -j 0)", rate / b)
        });
        base.get_or_insert(rate);
        println!("-j {helpers:<7} {rate:>12.1} {n:>10}{ratio}");
    }
}
