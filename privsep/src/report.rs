//! The state report (SIGUSR1, FIFO `r`): every SA with its name, phase, cookies, peer,
//! algorithms and remaining lifetime; every exchange in progress with its step; every
//! pending timer; and the running configuration. The child renders it (it holds the
//! state); the parent writes it to the `-R` file (the child is chrooted).

use ike::engine::{Engine, Selector};
use std::fmt::Write;
use std::time::Instant;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn secs_until(now: Instant, t: Instant) -> String {
    match t.checked_duration_since(now) {
        Some(d) => format!("{}s", d.as_secs()),
        None => "due".into(),
    }
}

fn selector(s: &Selector) -> String {
    let net = match s.range_end {
        Some(end) => format!("{}-{end}", s.address),
        None => format!("{}/{}", s.address, s.prefix_len),
    };
    match (s.protocol, s.port) {
        (0, 0) => net,
        (p, 0) => format!("{net} proto {p}"),
        (p, port) => format!("{net} proto {p} port {port}"),
    }
}

/// How many exchanges, waiting requests and timers the report lists, each: under a flood
/// there are thousands of them, all alike, and the report must still fit the child's
/// frame to the parent (1 MiB) and be read by a person; the counters give the totals.
pub const LISTED: usize = 100;

/// Writes the first [`LISTED`] of `lines`, then how many more there are.
fn listed(r: &mut String, lines: impl Iterator<Item = String>, what: &str) {
    let mut more = 0usize;
    for (i, line) in lines.enumerate() {
        if i < LISTED {
            r.push_str(&line);
            r.push('\n');
        } else {
            more += 1;
        }
    }
    if more > 0 {
        let _ = writeln!(r, "  ... and {more} more {what}, not listed");
    }
}

/// The report text. `conf` is the running configuration in isakmpd.conf syntax (without
/// secrets: the child never has them). Traffic counters live in the kernel's SAs; with
/// `-n` there are none, and the report says so.
pub fn render(engine: &Engine, now: Instant, conf: &str, no_kernel: bool) -> String {
    let mut r = String::new();
    let _ = writeln!(r, "isakmpd report, pid {}", std::process::id());
    r.push_str(&render_sas(engine, now, no_kernel));
    let p1 = engine.phase1_sas();
    let _ = writeln!(r, "\nExchanges in progress:");
    let adm = engine.admission();
    let _ = writeln!(
        r,
        "  half-open responder exchanges: {}{}; first messages refused: {} over Max-half-open, {} over Max-half-open-per-address, {} over Aggressive-mode-rate; unproven exchanges dropped for newer ones while busy: {}",
        adm.half_open,
        if adm.busy { " (busy: Max-half-open reached)" } else { "" },
        adm.refused_total,
        adm.refused_per_address,
        adm.refused_aggressive,
        adm.evicted
    );
    let faults = engine.faults();
    let _ = writeln!(
        r,
        "  log lines suppressed by the rate limit: {}; internal errors contained (datagram, answer or timer dropped): {}",
        faults.log_suppressed, faults.internal_errors
    );
    let given_up = engine.keying_given_up();
    if !given_up.is_empty() {
        let names: Vec<&str> = given_up.iter().map(|c| c.as_str()).collect();
        let _ = writeln!(
            r,
            "  not started again, their Keying-tries used up (until a reload or `c name`): {}",
            names.join(", ")
        );
    }
    let phase1 = p1.iter().filter(|p| !p.established).map(|p| {
        format!(
            "  phase 1 {} {} cookies {}:{} {}",
            p.peer,
            p.remote,
            hex(&p.icookie.0),
            hex(&p.rcookie.0),
            p.state
        )
    });
    let phase2 = engine.exchanges().into_iter().map(|x| {
        format!(
            "  phase 2 {} message id {:08x} {} {}",
            x.connection,
            x.message_id,
            if x.initiator {
                "initiator"
            } else {
                "responder"
            },
            x.state
        )
    });
    listed(&mut r, phase1.chain(phase2), "exchanges");
    // What waits for a helper or the kernel, named by the exchange's peer.
    let peers: std::collections::BTreeMap<_, _> =
        p1.iter().map(|p| (p.serial, p.peer.to_string())).collect();
    let peer_of = |serial: ike::engine::IsakmpSerial| {
        peers
            .get(&serial)
            .cloned()
            .unwrap_or_else(|| "?".to_string())
    };
    let _ = writeln!(r, "\nWaiting for answers:");
    let crypto = engine.crypto_pending().map(|(id, w)| {
        format!(
            "  request {}: a helper's {} for {}",
            id.0,
            w.describe(),
            peer_of(w.serial())
        )
    });
    let kernel = engine.kernel_pending().map(|(id, w)| {
        format!(
            "  request {}: the kernel's {} for {}",
            id.0,
            w.describe(),
            peer_of(w.serial())
        )
    });
    listed(&mut r, crypto.chain(kernel), "requests");
    let _ = writeln!(r, "\nPending timers:");
    let timers = engine
        .pending_timers()
        .into_iter()
        .map(|(t, what)| format!("  in {}: {what}", secs_until(now, t)));
    listed(&mut r, timers, "timers");
    let _ = writeln!(r, "\nRunning configuration:\n{conf}");
    r
}

/// The SA part of the report; alone, what `S` writes to the result file.
pub fn render_sas(engine: &Engine, now: Instant, no_kernel: bool) -> String {
    let mut r = String::new();
    let p1 = engine.phase1_sas();
    let _ = writeln!(
        r,
        "\nPhase 1 (ISAKMP SAs): {}",
        p1.iter().filter(|p| p.established).count()
    );
    for p in p1.iter().filter(|p| p.established) {
        let _ = writeln!(
            r,
            "  {} {} -> {} cookies {}:{} {} {}{} expires in {}",
            p.peer,
            p.local,
            p.remote,
            hex(&p.icookie.0),
            hex(&p.rcookie.0),
            if p.initiator {
                "initiator"
            } else {
                "responder"
            },
            p.summary,
            match (p.nat_local, p.nat_remote) {
                (false, false) => String::new(),
                (l, rm) => format!(
                    " NAT{}{}",
                    if l { " (we are behind)" } else { "" },
                    if rm { " (peer is behind)" } else { "" }
                ),
            },
            p.expires.map_or("-".into(), |t| secs_until(now, t)),
        );
    }
    let sas = engine.ipsec_sas();
    let _ = writeln!(r, "\nPhase 2 (IPsec SAs): {}", sas.len());
    for s in &sas {
        let spis: Vec<String> = s
            .spis
            .iter()
            .map(|(p, i, o)| format!("{p:?} in {i:08x} out {o:08x}"))
            .collect();
        let _ = writeln!(
            r,
            "  {} peer {} {} <=> {} {} [{}] expires in {}{}",
            s.connection,
            s.peer,
            selector(&s.local),
            selector(&s.remote),
            spis.join(", "),
            s.summary,
            secs_until(now, s.expires),
            if s.replaced {
                " (replaced, expiring)"
            } else {
                ""
            },
        );
        if no_kernel {
            let _ = writeln!(r, "    counters: none (-n: the SA is not in the kernel)");
        }
    }
    r
}

/// The crypto queue's lines: how much work waits for the helpers, how much they are doing,
/// the bound, and how many requests a full queue turned away.
pub fn render_crypto_queue(d: &crate::crypto_queue::Depth) -> String {
    let mut r = String::new();
    let _ = writeln!(
        r,
        "Crypto queue: {} waiting, {} in service, capacity {}",
        d.waiting, d.in_service, d.capacity
    );
    let _ = writeln!(r, "Crypto requests shed (queue full): {}", d.shed);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_crypto_queue_shows_its_depth_bound_and_shed_requests() {
        let text = render_crypto_queue(&crate::crypto_queue::Depth {
            waiting: 3,
            in_service: 2,
            capacity: 4096,
            shed: 7,
        });
        assert_eq!(
            text,
            "Crypto queue: 3 waiting, 2 in service, capacity 4096\n\
             Crypto requests shed (queue full): 7\n"
        );
    }

    #[test]
    fn long_lists_are_cut_at_listed_with_the_number_left_out() {
        let mut r = String::new();
        listed(
            &mut r,
            (0..LISTED + 7).map(|i| format!("  line {i}")),
            "timers",
        );
        assert_eq!(r.lines().count(), LISTED + 1);
        assert!(r.ends_with("  ... and 7 more timers, not listed\n"), "{r}");
        let mut short = String::new();
        listed(&mut short, (0..3).map(|i| format!("  line {i}")), "timers");
        assert_eq!(short, "  line 0\n  line 1\n  line 2\n");
    }
}
