//! flood_bench: how an honest peer fares while a spoofed flood runs, and what a half-open
//! exchange costs. As root, in namespaces of its own (nothing leaves them):
//!
//! ```text
//! flood_bench [--tries N] [--memory N] [RATE ...]
//! ```
//!
//! For each RATE (first messages a second, half Main Mode, half Aggressive Mode, from
//! random addresses of 198.18.0.0/15; `0` for none, `max` for as fast as the generator
//! goes) it starts west (the flood test's gateway, `isakmpd -n -v -j 1`) and the flood, then
//! starts north (an honest peer) N times one after the other (default 10), and reports how
//! many of north's Main Mode and Quick Mode exchanges completed within 10 s, the time from
//! north's start to its phase 2 (which includes starting a daemon: compare with rate 0),
//! what the flood really sent, and west's CPU time a second. Then it fills west's table
//! with `--memory` half-open exchanges (default 20,000, at 5,000 a second) and reports the
//! resident memory of west's processes per half-open exchange.
//!
//! The isakmpd binary is the one beside this one, or `$ISAKMPD_BIN`.

use e2e::daemon::Daemon;
use e2e::flood::{unique_source, FirstMessages, FloodNet, Xorshift};
use e2e::flood_scene::*;
use e2e::netns::Netns;
use e2e::pair::*;
use ike::codec::Identity;
use ike::crypto::Group;
use std::net::SocketAddrV4;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ARGS: &[&str] = &["-n", "-v", "-j", "1"];

/// A flood at `rate` a second (`None`: unpaced) until `stop`; the number sent.
fn flood(
    net: Arc<FloodNet>,
    rate: Option<u64>,
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    main_mode_only: bool,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        if rate == Some(0) {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(10));
            }
            return;
        }
        let msgs = FirstMessages {
            offer: offer(),
            ke_len: Group::Modp2048.public_len(),
            id: Identity::Fqdn(b"am.example".to_vec()),
        };
        let target = SocketAddrV4::new(WEST_ADDR.parse().unwrap_or([0, 0, 0, 0].into()), 500);
        let mut rng = Xorshift(0x2545_f491_4f6c_dd1d);
        let start = Instant::now();
        let mut n = 0u64;
        while !stop.load(Ordering::Relaxed) {
            if let Some(rate) = rate {
                let due = Duration::from_secs_f64(n as f64 / rate as f64);
                if let Some(wait) = due.checked_sub(start.elapsed()) {
                    std::thread::sleep(wait);
                }
            }
            let cookie = rng.next_u64().to_be_bytes();
            let bytes = if main_mode_only || n & 1 == 0 {
                msgs.main_mode(cookie)
            } else {
                msgs.aggressive(cookie, &mut rng)
            };
            let _ = net.send_from(unique_source(n), target, &bytes);
            n += 1;
            sent.store(n, Ordering::Relaxed);
        }
    })
}

/// utime + stime of `pid`, in seconds (clock ticks of 100 a second).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name, which is in parentheses.
    let rest = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // utime and stime are fields 14 and 15 of stat(5): 12 and 13 after the name.
    (ticks(11) + ticks(12)) as f64 / 100.0
}

fn west_cpu(west: &Daemon) -> f64 {
    let mut pids = vec![west.pid()];
    pids.extend(e2e::procfs::role_children(west.pid(), "child"));
    pids.extend(e2e::procfs::role_children(west.pid(), "helper"));
    pids.iter().map(|p| cpu_seconds(*p)).sum()
}

struct Topology {
    west: Daemon,
    ns_west: Netns,
    ns_north: Netns,
    net: Arc<FloodNet>,
}

fn topology(tag: &str, general: &str) -> Result<Topology, String> {
    let ns_west = Netns::new(&format!("{tag}w"))?;
    let ns_north = Netns::new(&format!("{tag}n"))?;
    Netns::link(
        &ns_north,
        &format!("{NORTH_ADDR}/24"),
        &ns_west,
        &format!("{WEST_ADDR}/24"),
    )?;
    let west = Daemon::start(&ns_west, &format!("{tag}w"), &west_conf(general), ARGS)?;
    if !e2e::wait_until(Duration::from_secs(10), || {
        west.log_count("listening on") >= 1
    }) {
        return Err(format!("west did not start:\n{}", west.log_text()));
    }
    let net = Arc::new(FloodNet::new(&format!("{tag}x"), &ns_west)?);
    Ok(Topology {
        west,
        ns_west,
        ns_north,
        net,
    })
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn run_rate(label: &str, rate: Option<u64>, tries: usize) -> Result<(), String> {
    let t = topology("fb", "")?;
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let gen = flood(t.net.clone(), rate, stop.clone(), sent.clone(), false);
    // Let the flood fill the table first.
    std::thread::sleep(Duration::from_millis(if rate == Some(0) {
        0
    } else {
        1500
    }));
    let (cpu0, sent0, t0) = (
        west_cpu(&t.west),
        sent.load(Ordering::Relaxed),
        Instant::now(),
    );
    let mut took = Vec::new();
    let mut ok = 0;
    for i in 0..tries {
        let start = Instant::now();
        let north = Daemon::start(&t.ns_north, "fbnorth", &north_conf(), ARGS)?;
        let up = e2e::wait_until(Duration::from_secs(10), || north.log_count(PHASE2_UP) >= 1);
        if up {
            ok += 1;
            took.push(start.elapsed().as_secs_f64());
        } else {
            eprintln!("{label}: north's try {i} did not come up within 10 s");
        }
        drop(north);
    }
    let secs = t0.elapsed().as_secs_f64();
    let cpu = (west_cpu(&t.west) - cpu0) / secs;
    let real_rate = (sent.load(Ordering::Relaxed) - sent0) as f64 / secs;
    stop.store(true, Ordering::Relaxed);
    let _ = gen.join();
    let rep = t.west.report();
    let counters = rep
        .lines()
        .find(|l| l.contains("half-open responder exchanges"))
        .unwrap_or("")
        .trim()
        .to_string();
    println!(
        "{label:>8}: {real_rate:>9.0} first messages a second sent; north {ok}/{tries} up, median {:.3} s, max {:.3} s from start to phase 2; west's CPU {:.2} s a second; {counters}",
        median(&mut took.clone()),
        took.iter().copied().fold(0.0, f64::max),
        cpu,
    );
    drop(t.ns_west);
    Ok(())
}

fn run_memory(n: u64) -> Result<(), String> {
    let general = format!("Max-half-open=\t\t{n}\nMax-half-open-per-address=\t{n}\n");
    let t = topology("fm", &general)?;
    std::thread::sleep(Duration::from_millis(500));
    let (rss0, _) = memory_kib(t.west.pid());
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let gen = flood(t.net.clone(), Some(5_000), stop.clone(), sent.clone(), true);
    while sent.load(Ordering::Relaxed) < n {
        std::thread::sleep(Duration::from_millis(10));
    }
    stop.store(true, Ordering::Relaxed);
    let _ = gen.join();
    std::thread::sleep(Duration::from_millis(500));
    let (rss1, _) = memory_kib(t.west.pid());
    let rep = t.west.report();
    let line = rep
        .lines()
        .find(|l| l.contains("half-open responder exchanges: "))
        .unwrap_or("");
    if line.is_empty() {
        let log = t.west.log_text();
        let tail: Vec<&str> = log.lines().rev().take(5).collect();
        eprintln!("memory: no report; west's last lines: {tail:#?}");
    }
    let half_open: u64 = line
        .split("half-open responder exchanges: ")
        .nth(1)
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    println!(
        "memory: {half_open} half-open exchanges (of {n} first messages sent): west's processes {rss0} KiB before, {rss1} KiB after: {:.2} KiB per half-open exchange",
        (rss1.saturating_sub(rss0)) as f64 / half_open.max(1) as f64
    );
    Ok(())
}

fn main() {
    if std::env::var_os("ISAKMPD_BIN").is_none() {
        if let Some(dir) = std::env::current_exe()
            .ok()
            .and_then(|e| e.parent().map(|p| p.to_path_buf()))
        {
            std::env::set_var("ISAKMPD_BIN", dir.join("isakmpd"));
        }
    }
    if let Some(why) = e2e::skip_reason() {
        eprintln!("flood_bench: cannot run here: {why}");
        std::process::exit(2);
    }
    let mut tries = 10;
    let mut memory = 20_000;
    let mut rates = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--tries" => tries = args.next().and_then(|v| v.parse().ok()).unwrap_or(tries),
            "--memory" => memory = args.next().and_then(|v| v.parse().ok()).unwrap_or(memory),
            "max" => rates.push(("max".to_string(), None)),
            r => match r.parse::<u64>() {
                Ok(n) => rates.push((r.to_string(), Some(n))),
                Err(_) => {
                    eprintln!("flood_bench: {r:?} is not a rate (first messages a second, or max)");
                    std::process::exit(2);
                }
            },
        }
    }
    if rates.is_empty() {
        rates = ["0", "1000", "5000", "20000"]
            .iter()
            .map(|r| (r.to_string(), r.parse().ok()))
            .chain([("max".to_string(), None)])
            .collect();
    }
    for (label, rate) in rates {
        if let Err(e) = run_rate(&label, rate, tries) {
            eprintln!("flood_bench: rate {label}: {e}");
            std::process::exit(1);
        }
    }
    if memory > 0 {
        if let Err(e) = run_memory(memory) {
            eprintln!("flood_bench: memory: {e}");
            std::process::exit(1);
        }
    }
}
