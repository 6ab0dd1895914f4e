//! pluto's updown scripts: when a connection's first IPsec SA comes up the parent runs the
//! connection's script with the verbs `prepare`, `route` and `up`, and when its last SA goes
//! `down` and `unroute`, each `-host` or `-client` (and `-v6` between IPv6 gateways), with
//! the `PLUTO_*` variables of pluto(8). The script is named in the parent's own
//! configuration (`Updown=` in the connection's section, else in `[General]`), when the
//! parent's own table says a tunnel's first SA pair went in or its last SA went out
//! (`crate::table`), with the environment built from that record: nothing the child says
//! reaches a script. Output is logged; a script that runs past the timeout is killed.

use crate::log;
use ike::engine::Selector;
use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long one verb may run.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// A tunnel of `connection` appeared (`up`) or went (`!up`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub connection: String,
    pub up: bool,
    pub me: IpAddr,
    pub peer: IpAddr,
    pub my_client: Selector,
    pub peer_client: Selector,
}

/// The verbs to run, in order.
pub fn verbs(r: &Request) -> Vec<String> {
    let max = if r.me.is_ipv4() { 32 } else { 128 };
    let host = r.my_client.address == r.me
        && r.my_client.prefix_len == max
        && r.my_client.range_end.is_none();
    let what = if host { "host" } else { "client" };
    let v6 = if r.me.is_ipv6() { "-v6" } else { "" };
    let list: &[&str] = if r.up {
        &["prepare", "route", "up"]
    } else {
        &["down", "unroute"]
    };
    list.iter().map(|v| format!("{v}-{what}{v6}")).collect()
}

fn mask(s: &Selector) -> String {
    let bits = u32::from(s.prefix_len);
    match s.address {
        IpAddr::V4(_) => {
            let m = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits.min(32))
            };
            std::net::Ipv4Addr::from(m).to_string()
        }
        IpAddr::V6(_) => {
            let m = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits.min(128))
            };
            std::net::Ipv6Addr::from(m).to_string()
        }
    }
}

fn client(s: &Selector) -> String {
    match s.range_end {
        Some(end) => format!("{}-{end}", s.address),
        None => format!("{}/{}", s.address, s.prefix_len),
    }
}

/// The `PLUTO_*` environment for `verb`. PLUTO_NEXT_HOP is the peer itself (we do not look
/// up routes); PLUTO_INTERFACE is not set: XFRM has no ipsecN interfaces.
pub fn environment(r: &Request, verb: &str) -> Vec<(String, String)> {
    let v = |k: &str, val: String| (format!("PLUTO_{k}"), val);
    vec![
        v("VERSION", "1.1".into()),
        v("VERB", verb.into()),
        v("CONNECTION", r.connection.clone()),
        v("NEXT_HOP", r.peer.to_string()),
        v("ME", r.me.to_string()),
        v("MY_CLIENT", client(&r.my_client)),
        v("MY_CLIENT_NET", r.my_client.address.to_string()),
        v("MY_CLIENT_MASK", mask(&r.my_client)),
        v("MY_PROTOCOL", r.my_client.protocol.to_string()),
        v("MY_PORT", r.my_client.port.to_string()),
        v("PEER", r.peer.to_string()),
        v("PEER_CLIENT", client(&r.peer_client)),
        v("PEER_CLIENT_NET", r.peer_client.address.to_string()),
        v("PEER_CLIENT_MASK", mask(&r.peer_client)),
        v("PEER_PROTOCOL", r.peer_client.protocol.to_string()),
        v("PEER_PORT", r.peer_client.port.to_string()),
    ]
}

/// Run `script` for every verb of `r`, one after the other, each through `/bin/sh -c` (the
/// script may carry arguments, as pluto's `--updown` does), its output logged, each verb
/// killed after `timeout`.
pub fn run_with_timeout(script: &str, r: &Request, timeout: Duration) {
    for verb in verbs(r) {
        run_verb(script, r, &verb, timeout);
    }
}

fn run_verb(script: &str, r: &Request, verb: &str, timeout: Duration) {
    let tag = format!("updown {verb} {}", r.connection);
    let child = Command::new("/bin/sh")
        .arg("-c")
        .arg(script)
        .env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .envs(environment(r, verb))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so that a timeout kills what the script started too (a
        // surviving grandchild would hold the output pipes open).
        .process_group(0)
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return log::warning(&format!("{tag}: cannot run {script}: {e}")),
    };
    let readers: Vec<_> = [
        child
            .stdout
            .take()
            .map(|o| Box::new(o) as Box<dyn std::io::Read + Send>),
        child
            .stderr
            .take()
            .map(|e| Box::new(e) as Box<dyn std::io::Read + Send>),
    ]
    .into_iter()
    .flatten()
    .map(|out| {
        let tag = tag.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                log::notice(&format!("{tag}: {line}"));
            }
        })
    })
    .collect();
    let end = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if Instant::now() < end => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                if let Ok(pid) = i32::try_from(child.id()) {
                    let _ = nix::sys::signal::killpg(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    for r in readers {
        let _ = r.join();
    }
    match status {
        Some(s) if s.success() => log::info(&format!("{tag}: done")),
        Some(s) => log::warning(&format!("{tag}: {script} failed ({s})")),
        None => log::warning(&format!(
            "{tag}: {script} killed after {} s",
            timeout.as_secs()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(a: &str, p: u8) -> Selector {
        Selector {
            address: a.parse().expect("ip"),
            prefix_len: p,
            range_end: None,
            protocol: 0,
            port: 0,
        }
    }

    fn req(up: bool, me: &str, mine: Selector) -> Request {
        Request {
            connection: "c".into(),
            up,
            me: me.parse().expect("ip"),
            peer: "192.0.2.2".parse().expect("ip"),
            my_client: mine,
            peer_client: sel("10.2.0.0", 16),
        }
    }

    #[test]
    fn verbs_follow_pluto() {
        assert_eq!(
            verbs(&req(true, "192.0.2.1", sel("10.1.0.0", 16))),
            ["prepare-client", "route-client", "up-client"]
        );
        assert_eq!(
            verbs(&req(false, "192.0.2.1", sel("10.1.0.0", 16))),
            ["down-client", "unroute-client"]
        );
        assert_eq!(
            verbs(&req(true, "192.0.2.1", sel("192.0.2.1", 32))),
            ["prepare-host", "route-host", "up-host"]
        );
        assert_eq!(
            verbs(&req(false, "2001:db8::1", sel("2001:db8:1::", 48))),
            ["down-client-v6", "unroute-client-v6"]
        );
    }

    #[test]
    fn environment_names_both_ends() {
        let env = environment(&req(true, "192.0.2.1", sel("10.1.0.0", 16)), "up-client");
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("PLUTO_VERB"), Some("up-client"));
        assert_eq!(get("PLUTO_MY_CLIENT"), Some("10.1.0.0/16"));
        assert_eq!(get("PLUTO_MY_CLIENT_MASK"), Some("255.255.0.0"));
        assert_eq!(get("PLUTO_PEER_CLIENT_NET"), Some("10.2.0.0"));
        assert_eq!(get("PLUTO_PEER"), Some("192.0.2.2"));
        assert_eq!(get("PLUTO_VERSION"), Some("1.1"));
    }

    #[test]
    fn a_script_that_hangs_is_killed() {
        let t = Instant::now();
        run_verb(
            "sleep 60",
            &req(true, "192.0.2.1", sel("10.1.0.0", 16)),
            "up-client",
            Duration::from_secs(1),
        );
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    }
}
