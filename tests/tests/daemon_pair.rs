//! Two isakmpd daemons (`-n -v`, no kernel) in two namespaces joined by a veth: phase 1 and
//! phase 2 with a pre-shared key and with RSA signatures; the child and the helpers are
//! confined; the pre-shared key never enters the child; a killed child is replaced and
//! phase 1 comes back.

use e2e::daemon::Daemon;
use e2e::pair::*;
use e2e::procfs;
use std::time::Duration;

/// Every pair runs without the kernel, logs each phase, and has two crypto helpers.
const ARGS: &[&str] = &["-n", "-v", "-j", "2"];

/// The line of `log` holding `needle`, for messages.
fn line_with(d: &Daemon, needle: &str) -> Option<String> {
    d.logs().into_iter().find(|l| l.contains(needle))
}

/// The example configurations (the demo's) bring up both phases with the pre-shared key,
/// each side naming its own peer section and connection.
#[test]
fn psk_pair() {
    e2e::require_env!();
    let pair = Pair::psk_from_examples("pp", ARGS);
    let logs = pair.logs();
    let p1e = line_with(
        &pair.east,
        &format!("{PHASE1_UP} with {EAST_PEER_SECTION} ({WEST_ADDR}:"),
    )
    .unwrap_or_else(|| panic!("east: no phase 1 with {EAST_PEER_SECTION}\n{logs}"));
    let p1w = line_with(
        &pair.west,
        &format!("{PHASE1_UP} with {WEST_PEER_SECTION} ({EAST_ADDR}:"),
    )
    .unwrap_or_else(|| panic!("west: no phase 1 with {WEST_PEER_SECTION}\n{logs}"));
    for l in [&p1e, &p1w] {
        for what in ["main", "AES-256-CBC", "SHA2-256", "PreShared", "MODP2048"] {
            assert!(l.contains(what), "{what:?} missing from {l:?}\n{logs}");
        }
    }
    assert!(
        line_with(
            &pair.east,
            &format!("{PHASE2_UP} for {EAST_CONNECTION} with {EAST_PEER_SECTION}")
        )
        .is_some(),
        "east: no phase 2 for {EAST_CONNECTION}\n{logs}"
    );
    assert!(
        line_with(
            &pair.west,
            &format!("{PHASE2_UP} for {WEST_CONNECTION} with {WEST_PEER_SECTION}")
        )
        .is_some(),
        "west: no phase 2 for {WEST_CONNECTION}\n{logs}"
    );
}

/// RSA signatures with raw public keys: each side has its private key
/// (`[X509-Certificates] Private-key`) and the peer's public key (the peer section's
/// `Public-key`), generated for the test.
#[test]
fn rsa_pair() {
    e2e::require_env!();
    let (east_key, east_pub) = rsa_keypair(2048).expect("east key");
    let (west_key, west_pub) = rsa_keypair(2048).expect("west key");
    let mut pair = Pair::start_rsa("rp", (&east_key, &west_pub), (&west_key, &east_pub), ARGS)
        .expect("start the pair");
    if let Err(e) = pair.wait_up(Duration::from_secs(20)) {
        panic!("{e}\n{}", pair.logs());
    }
    let logs = pair.logs();
    for (d, section) in [
        (&pair.east, EAST_PEER_SECTION),
        (&pair.west, WEST_PEER_SECTION),
    ] {
        let l = line_with(d, &format!("{PHASE1_UP} with {section}"))
            .unwrap_or_else(|| panic!("no phase 1 with {section}\n{logs}"));
        assert!(
            l.contains("RsaSig") && l.contains("AES-256-CBC") && l.contains("MODP2048"),
            "phase 1 not by RSA signature with the configured transform: {l:?}\n{logs}"
        );
    }
}

/// The public keys are what authenticates: west given some other key for east (not east's)
/// establishes nothing, and neither daemon falls over.
#[test]
fn rsa_wrong_public_key_refused() {
    e2e::require_env!();
    let (east_key, _) = rsa_keypair(2048).expect("east key");
    let (west_key, west_pub) = rsa_keypair(2048).expect("west key");
    let (_, stranger_pub) = rsa_keypair(2048).expect("another key");
    let mut pair = Pair::start_rsa(
        "rx",
        (&east_key, &west_pub),
        (&west_key, &stranger_pub),
        ARGS,
    )
    .expect("start the pair");
    // Main Mode takes well under a second here; give it several retransmissions.
    let up = e2e::wait_until(Duration::from_secs(8), || {
        pair.east.log_count(PHASE1_UP) + pair.west.log_count(PHASE1_UP) > 0
    });
    let logs = pair.logs();
    assert!(
        !up,
        "phase 1 with a public key that is not the peer's\n{logs}"
    );
    // West got as far as checking east's signature, and said so, naming the peer.
    assert!(
        pair.west
            .logs()
            .iter()
            .any(|l| l.contains(WEST_PEER_SECTION)),
        "west never logged the failed exchange with {WEST_PEER_SECTION}: the refusal proves nothing\n{logs}"
    );
    assert!(pair.east.try_exit().is_none(), "east exited\n{logs}");
    assert!(pair.west.try_exit().is_none(), "west exited\n{logs}");
    eprintln!("{logs}");
}

/// The child and every helper of both daemons: uid and gid not root, no capabilities,
/// no_new_privs, chrooted to /var/empty.
#[test]
fn child_and_helpers_confined() {
    e2e::require_env!();
    let pair = Pair::psk_from_examples("pv", ARGS);
    let mut problems = Vec::new();
    for (name, d) in [("east", &pair.east), ("west", &pair.west)] {
        let children = procfs::role_children(d.pid(), "child");
        let helpers = procfs::role_children(d.pid(), "helper");
        assert_eq!(
            children.len(),
            1,
            "{name}: want one `isakmpd: child` under pid {}, have {children:?}; children: {:?}",
            d.pid(),
            Daemon::children_of(d.pid())
                .iter()
                .map(|&p| (p, procfs::cmdline(p)))
                .collect::<Vec<_>>()
        );
        assert_eq!(
            helpers.len(),
            2,
            "{name}: want 2 helpers (-j 2), have {helpers:?}"
        );
        for pid in children.iter().chain(&helpers) {
            eprintln!(
                "{name} pid {pid} `{}`: Uid {:?} Seccomp {:?}",
                procfs::cmdline(*pid),
                procfs::status_field(*pid, "Uid:"),
                procfs::status_field(*pid, "Seccomp:")
            );
            // A process just spawned drops its privileges a moment after exec: allow that.
            let mut found = Vec::new();
            e2e::wait_until(Duration::from_secs(2), || {
                found = procfs::confinement_problems(*pid);
                found.is_empty()
            });
            for p in found {
                problems.push(format!("{name} pid {pid} ({}): {p}", procfs::cmdline(*pid)));
            }
        }
        // The parent is the one that keeps privileges.
        assert_eq!(
            procfs::status_field(d.pid(), "Uid:")
                .unwrap_or_default()
                .split_whitespace()
                .next(),
            Some("0"),
            "{name}: the parent should still be root"
        );
    }
    assert!(
        problems.is_empty(),
        "not confined:\n{}",
        problems.join("\n")
    );
}

/// With both phases up (so the key has been used), the pre-shared key's bytes are nowhere
/// in either child's memory. The same search finds them in a helper, which holds the key:
/// the search would see the key if it were there.
#[test]
fn psk_not_in_child_memory() {
    e2e::require_env!();
    let east_conf = example_conf("east").expect("example configuration");
    let psk = psk_of(&east_conf).expect("the example has an Authentication tag");
    assert!(
        psk.len() >= 24,
        "a short key could match by chance: {psk:?}"
    );
    let pair = Pair::psk_from_examples("pm", ARGS);
    for (name, d) in [("east", &pair.east), ("west", &pair.west)] {
        let children = procfs::role_children(d.pid(), "child");
        assert_eq!(children.len(), 1, "{name}: children {children:?}");
        let (found, searched) =
            procfs::memory_contains(children[0], psk.as_bytes()).expect("read the child's memory");
        assert!(searched > 0, "{name}: read nothing of the child's memory");
        assert!(
            !found,
            "{name}: the pre-shared key is in the child's memory (pid {}, {searched} bytes searched)",
            children[0]
        );
        eprintln!("{name}: child {}: {searched} bytes, no key", children[0]);
        let helpers = procfs::role_children(d.pid(), "helper");
        assert!(!helpers.is_empty(), "{name}: no helpers");
        let in_helpers: Vec<u32> = helpers
            .iter()
            .copied()
            .filter(|&h| {
                procfs::memory_contains(h, psk.as_bytes())
                    .map(|(f, _)| f)
                    .unwrap_or(false)
            })
            .collect();
        assert!(
            !in_helpers.is_empty(),
            "{name}: the control failed: the key is in no helper's memory either ({helpers:?}), \
             so the search proves nothing"
        );
    }
}

/// SIGKILL to east's child: the parent notices, starts a new child (a new pid), and that
/// child re-establishes phase 1 with west, as the configuration asks.
#[test]
fn child_restart() {
    e2e::require_env!();
    let pair = Pair::psk_from_examples("cr", ARGS);
    let parent = pair.east.pid();
    let old = procfs::role_children(parent, "child");
    assert_eq!(old.len(), 1, "east: children {old:?}");
    let old = old[0];
    let phase1 = |p: &Pair| p.east.log_count(PHASE1_UP) + p.west.log_count(PHASE1_UP);
    let before = phase1(&pair);
    let st = std::process::Command::new("kill")
        .args(["-KILL", &old.to_string()])
        .status()
        .expect("run kill");
    assert!(st.success(), "kill -KILL {old}");
    let mut new = None;
    let replaced = e2e::wait_until(Duration::from_secs(30), || {
        new = procfs::role_children(parent, "child")
            .into_iter()
            .find(|&p| p != old);
        new.is_some() && phase1(&pair) > before
    });
    let logs = pair.logs();
    assert!(
        new.is_some(),
        "no new child under east's parent {parent} within 30 s\n{logs}"
    );
    assert!(
        replaced,
        "new child {new:?}, but no new `{PHASE1_UP}` within 30 s (was {before})\n{logs}"
    );
    assert!(
        pair.east
            .logs()
            .iter()
            .any(|l| l.contains(&format!("child {old}"))),
        "east's parent did not log the death of child {old}\n{logs}"
    );
    if let Some(n) = new {
        let problems = procfs::confinement_problems(n);
        assert!(
            problems.is_empty(),
            "the new child {n} is not confined: {problems:?}"
        );
    }
    // What the configuration asks for includes the phase 2 connection: report whether the
    // new child brought it back too (not a failure of this test).
    let p2 = pair.east.wait_log(PHASE2_UP, 2, Duration::from_secs(5));
    eprintln!("after the restart, phase 2 re-established: {p2}");
}

/// With both phases up by RSA signatures, neither child has its private key in memory: not
/// the PEM text, not the first prime in either byte order (OpenSSL keeps bignums as
/// little-endian limbs). The same search finds the prime in a helper's memory.
#[test]
fn rsa_key_not_in_child_memory() {
    e2e::require_env!();
    let (east_key, east_pub) = rsa_keypair(2048).expect("east key");
    let (west_key, west_pub) = rsa_keypair(2048).expect("west key");
    let mut pair = Pair::start_rsa("rm", (&east_key, &west_pub), (&west_key, &east_pub), ARGS)
        .expect("start the pair");
    if let Err(e) = pair.wait_up(Duration::from_secs(20)) {
        panic!("{e}\n{}", pair.logs());
    }
    for (name, d, key) in [
        ("east", &pair.east, &east_key),
        ("west", &pair.west, &west_key),
    ] {
        let p = rsa_prime1(key).expect("the key's prime");
        // 32 bytes from the middle: whole limbs whatever the alignment of the number.
        let mid = p.len() / 2 - 16;
        let be = p[mid..mid + 32].to_vec();
        let le: Vec<u8> = be.iter().rev().copied().collect();
        // A base64 line from the middle of the PEM body.
        let pem = String::from_utf8_lossy(key).into_owned();
        let lines: Vec<&str> = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let pem_line = lines[lines.len() / 2].as_bytes().to_vec();
        let needles = [
            ("prime1, big-endian", be),
            ("prime1, little-endian", le),
            ("PEM", pem_line),
        ];
        let children = procfs::role_children(d.pid(), "child");
        assert_eq!(children.len(), 1, "{name}: children {children:?}");
        for (what, needle) in &needles {
            let (found, searched) =
                procfs::memory_contains(children[0], needle).expect("read the child's memory");
            assert!(searched > 0, "{name}: read nothing of the child's memory");
            assert!(
                !found,
                "{name}: the private key ({what}) is in the child's memory (pid {})",
                children[0]
            );
        }
        let helpers = procfs::role_children(d.pid(), "helper");
        let in_helper = helpers.iter().any(|&h| {
            needles[..2].iter().any(|(_, n)| {
                procfs::memory_contains(h, n)
                    .map(|(f, _)| f)
                    .unwrap_or(false)
            })
        });
        assert!(
            in_helper,
            "{name}: the control failed: the prime is in no helper's memory either ({helpers:?})"
        );
    }
}

/// SIGKILL to one of east's helpers: a replacement appears (the pool asks the parent for
/// one), confined like the rest and holding the pre-shared key, so the pool is whole again.
#[test]
fn helper_replaced() {
    e2e::require_env!();
    let psk = psk_of(&example_conf("east").expect("example configuration"))
        .expect("the example has an Authentication tag");
    let pair = Pair::psk_from_examples("hr", ARGS);
    let parent = pair.east.pid();
    let before = procfs::role_children(parent, "helper");
    assert_eq!(before.len(), 2, "east: helpers {before:?}");
    let victim = before[0];
    let st = std::process::Command::new("kill")
        .args(["-KILL", &victim.to_string()])
        .status()
        .expect("run kill");
    assert!(st.success(), "kill -KILL {victim}");
    let mut now = Vec::new();
    let whole = e2e::wait_until(Duration::from_secs(10), || {
        now = procfs::role_children(parent, "helper");
        now.len() == 2 && !now.contains(&victim)
    });
    assert!(
        whole,
        "east: helpers {now:?} 10 s after killing {victim} (had {before:?})\n{}",
        pair.logs()
    );
    let new = now
        .iter()
        .copied()
        .find(|p| !before.contains(p))
        .expect("a new helper");
    // Spawned by exec, it drops its privileges a moment after it appears.
    let mut problems = Vec::new();
    let confined = e2e::wait_until(Duration::from_secs(5), || {
        problems = procfs::confinement_problems(new);
        problems.is_empty()
    });
    assert!(confined, "new helper {new} after 5 s: {problems:?}");
    // It has its secrets once it has been set up; give it a moment.
    let keyed = e2e::wait_until(Duration::from_secs(5), || {
        procfs::memory_contains(new, psk.as_bytes()).is_ok_and(|(f, _)| f)
    });
    assert!(
        keyed,
        "the new helper {new} does not hold the pre-shared key"
    );
    assert!(
        procfs::role_children(parent, "child").len() == 1,
        "east's child did not survive a helper's death\n{}",
        pair.logs()
    );
}

/// A gateway with more addresses than one message to the child carries descriptors (two
/// sockets per address, at most 16 descriptors a frame) starts, listens on every address
/// and answers: the sockets go to the child in several messages.
#[test]
fn a_gateway_with_many_addresses_starts_and_listens_on_each() {
    e2e::require_env!();
    let ns = e2e::netns::Netns::new("many").expect("netns");
    const EXTRA: usize = 30;
    for i in 0..EXTRA {
        ns.exec(&[
            "ip",
            "addr",
            "add",
            &format!("10.77.0.{}/32", i + 1),
            "dev",
            "lo",
        ])
        .expect("address");
    }
    let conf = example_conf("west").expect("example");
    let d = Daemon::start(&ns, "many", &conf, ARGS).expect("start");
    // 127.0.0.1, ::1 and the 30 addresses, on 500 and 4500 each.
    let want = 2 * (EXTRA + 2);
    assert!(
        d.wait_log("listening on", want, Duration::from_secs(20)),
        "{}",
        d.log_text()
    );
    assert!(d.report().contains("Pending timers:"), "{}", d.log_text());
    assert_eq!(d.log_count("cannot start child"), 0, "{}", d.log_text());
    for i in [1, EXTRA] {
        assert_eq!(
            d.log_count(&format!("listening on 10.77.0.{i}:500")),
            1,
            "{}",
            d.log_text()
        );
    }
}
