//! Interoperability with real IKEv1 peers: strongSwan (charon + swanctl) and Libreswan
//! (pluto + whack), each run privately in a network namespace, against our daemon in another,
//! with a masquerading router namespace between them.
//!
//! ```text
//!   ours (fzike<pid>io)            router (fzike<pid>ir)              peer (fzike<pid>ip)
//!   lo 10.1.0.1/24                                                    lo 10.2.0.1/24
//!   o0 192.0.2.1  (direct) ------- r0 192.0.2.254 | r1 198.51.100.254 ------- p0 198.51.100.2 (direct)
//!      192.0.2.3  (NATed)                masquerades .3 of either side         198.51.100.3 (NATed)
//! ```
//!
//! A scenario (see [`run`]) configures the peer (reloading its connection, never restarting
//! it, unless the scenario kills it), starts our daemon, negotiates, and checks both sides'
//! view: our log and report, the peer's `swanctl --list-sas` or `whack --status`. When the
//! kernel can hold ESP SAs ([`esp_available`]) it also proves that a ping between the client
//! subnets crosses ESP, by the packet counters of the XFRM states in our namespace.
//!
//! What a run needs from the machine: root, iproute2, nftables, strongSwan and the private
//! Libreswan root that `tests/interop/setup.sh` installs ([`missing_tools`]).

pub mod libreswan;
pub mod ours;
pub mod run;
pub mod strongswan;
pub mod suite;

use crate::netns::{run as cmd, Netns};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Our gateway address reached directly, and the one the router masquerades.
pub const OURS_DIRECT: &str = "192.0.2.1";
pub const OURS_NATED: &str = "192.0.2.3";
/// The peer's direct and masqueraded addresses.
pub const PEER_DIRECT: &str = "198.51.100.2";
pub const PEER_NATED: &str = "198.51.100.3";
/// The router: what the peer sees for our NATed address, and we for the peer's.
pub const ROUTER_OURS_SIDE: &str = "192.0.2.254";
pub const ROUTER_PEER_SIDE: &str = "198.51.100.254";
/// Client subnets (on each side's loopback) and the address a ping uses in each.
pub const OURS_NET: &str = "10.1.0.0/24";
pub const PEER_NET: &str = "10.2.0.0/24";
pub const OURS_CLIENT: &str = "10.1.0.1";
pub const PEER_CLIENT: &str = "10.2.0.1";
/// The pre-shared key every PSK scenario uses on both sides.
pub const PSK: &str = "fz-interop-psk-0123456789";

/// The private Libreswan root `tests/interop/setup.sh` unpacks (`LIBRESWAN_ROOT` overrides).
pub fn libreswan_root() -> PathBuf {
    std::env::var_os("LIBRESWAN_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/lib/isakmpd-interop/libreswan-root"))
}

/// The repository's `tests/interop/` directory (scripts, README).
pub fn scripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("interop")
}

/// What is missing for an interop run, if anything: the test skips with this reason.
pub fn missing_tools() -> Option<String> {
    let mut missing = Vec::new();
    for (what, path) in [
        ("strongSwan charon", PathBuf::from(strongswan::CHARON)),
        ("swanctl", PathBuf::from("/usr/sbin/swanctl")),
        ("nft", PathBuf::from("/usr/sbin/nft")),
        (
            "certutil (libnss3-tools)",
            PathBuf::from("/usr/bin/certutil"),
        ),
        ("Libreswan pluto", libreswan::bin_dir().join("pluto")),
    ] {
        if !path.exists() {
            missing.push(format!("{what} ({})", path.display()));
        }
    }
    if missing.is_empty() {
        None
    } else {
        Some(format!(
            "missing {}: run tests/interop/setup.sh as root",
            missing.join(", ")
        ))
    }
}

/// Whether this kernel can hold an ESP SA (`e2e::vm`'s probe, true inside the guest).
/// `E2E_ESP=0` or `1` overrides the probe.
pub fn esp_available() -> bool {
    match std::env::var("E2E_ESP").as_deref() {
        Ok("0") => false,
        Ok("1") => true,
        _ => crate::vm::host_has_esp(),
    }
}

/// The three namespaces and their links. Dropped: namespaces deleted (peers stopped first
/// by their own drops, which must come before this one's).
pub struct Topology {
    pub ours: Netns,
    pub router: Netns,
    pub peer: Netns,
}

impl Topology {
    pub fn new() -> Result<Self, String> {
        let t = Self {
            ours: Netns::new("io")?,
            router: Netns::new("ir")?,
            peer: Netns::new("ip")?,
        };
        veth(&t.ours, "o0", &t.router, "r0")?;
        veth(&t.router, "r1", &t.peer, "p0")?;
        for (ns, dev, addrs) in [
            (&t.ours, "o0", vec![OURS_DIRECT, OURS_NATED]),
            (&t.router, "r0", vec![ROUTER_OURS_SIDE]),
            (&t.router, "r1", vec![ROUTER_PEER_SIDE]),
            (&t.peer, "p0", vec![PEER_DIRECT, PEER_NATED]),
        ] {
            for a in addrs {
                ns.exec(&["ip", "addr", "add", &format!("{a}/24"), "dev", dev])?;
            }
            ns.exec(&["ip", "link", "set", dev, "up"])?;
        }
        t.ours.exec(&[
            "ip",
            "addr",
            "add",
            &format!("{OURS_CLIENT}/24"),
            "dev",
            "lo",
        ])?;
        t.peer.exec(&[
            "ip",
            "addr",
            "add",
            &format!("{PEER_CLIENT}/24"),
            "dev",
            "lo",
        ])?;
        t.ours
            .exec(&["ip", "route", "add", "default", "via", ROUTER_OURS_SIDE])?;
        t.peer
            .exec(&["ip", "route", "add", "default", "via", ROUTER_PEER_SIDE])?;
        // Traffic between the client subnets leaves from the client address.
        t.ours.exec(&[
            "ip",
            "route",
            "replace",
            PEER_NET,
            "via",
            ROUTER_OURS_SIDE,
            "src",
            OURS_CLIENT,
        ])?;
        t.peer.exec(&[
            "ip",
            "route",
            "replace",
            OURS_NET,
            "via",
            ROUTER_PEER_SIDE,
            "src",
            PEER_CLIENT,
        ])?;
        t.router.exec(&["sysctl", "-qw", "net.ipv4.ip_forward=1"])?;
        // Masquerade the two NATed addresses; count NAT-T keepalives (UDP to 4500 with one
        // byte of payload) from each side as they cross.
        let rules = format!(
            "table ip fznat {{
  counter ka_ours {{ packets 0 bytes 0 }}
  counter ka_peer {{ packets 0 bytes 0 }}
  chain fzforward {{
    type filter hook forward priority filter; policy accept;
    ip saddr {OURS_NATED} udp dport 4500 udp length 9 counter name ka_ours
    ip saddr {PEER_NATED} udp dport 4500 udp length 9 counter name ka_peer
  }}
  chain fzpost {{
    type nat hook postrouting priority srcnat; policy accept;
    ip saddr {OURS_NATED} oifname \"r1\" masquerade
    ip saddr {PEER_NATED} oifname \"r0\" masquerade
  }}
}}
"
        );
        nft(&t.router, &rules)?;
        // ESP (and ESP in UDP: port 4500, not the non-ESP marker of IKE, not a keepalive)
        // leaving and entering our namespace, for the rekey scenario's ping.
        nft(
            &t.ours,
            "table inet fzesp {
  counter esp_out { packets 0 bytes 0 }
  counter esp_in { packets 0 bytes 0 }
  chain fzpost {
    type filter hook postrouting priority filter; policy accept;
    meta l4proto esp counter name esp_out
    udp dport 4500 @th,64,32 != 0 counter name esp_out
  }
  chain fzpre {
    type filter hook prerouting priority filter; policy accept;
    meta l4proto esp counter name esp_in
    udp sport 4500 @th,64,32 != 0 counter name esp_in
  }
}
",
        )?;
        // Outer reachability, both ways, before anything else.
        t.ours.exec(&["ping", "-c1", "-W2", "-q", PEER_DIRECT])?;
        Ok(t)
    }

    /// NAT-T keepalives counted at the router so far: (from us, from the peer).
    pub fn keepalives(&self) -> (u64, u64) {
        (
            counter(&self.router, "ip fznat", "ka_ours"),
            counter(&self.router, "ip fznat", "ka_peer"),
        )
    }

    /// ESP packets (plain or in UDP) that left and entered our namespace so far.
    pub fn esp_packets(&self) -> (u64, u64) {
        (
            counter(&self.ours, "inet fzesp", "esp_out"),
            counter(&self.ours, "inet fzesp", "esp_in"),
        )
    }
}

/// The packets of nftables named counter `name` in `table` ("family name") in `ns`.
fn counter(ns: &Netns, table: &str, name: &str) -> u64 {
    let mut args = vec!["nft", "list", "counter"];
    args.extend(table.split_whitespace());
    args.push(name);
    ns.exec(&args)
        .ok()
        .and_then(|t| {
            let i = t.find("packets ")?;
            t[i + 8..].split_whitespace().next()?.parse().ok()
        })
        .unwrap_or(0)
}

/// A veth pair between two namespaces with the given interface names.
fn veth(a: &Netns, a_dev: &str, b: &Netns, b_dev: &str) -> Result<(), String> {
    cmd(&[
        "ip", "link", "add", a_dev, "netns", &a.name, "type", "veth", "peer", "name", b_dev,
        "netns", &b.name,
    ])
    .map(|_| ())
}

/// Load an nftables ruleset into a namespace.
pub fn nft(ns: &Netns, rules: &str) -> Result<(), String> {
    use std::io::Write;
    let mut child = std::process::Command::new("ip")
        .args(["netns", "exec", &ns.name, "nft", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("nft: {e}"))?;
    child
        .stdin
        .take()
        .ok_or("nft: no stdin")?
        .write_all(rules.as_bytes())
        .map_err(|e| format!("nft: {e}"))?;
    let out = child.wait_with_output().map_err(|e| format!("nft: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "nft -f: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}

/// The last `n` lines of a file, for failure reports.
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The files `tests/interop/mkcerts.sh` makes (see that script).
#[derive(Clone, Debug)]
pub struct Pki {
    pub dir: PathBuf,
    pub ca: PathBuf,
    pub crl: PathBuf,
    /// Our certificate (`ours.pem`, key `ours.key`), the peer's, and a revoked one.
    pub ours: PathBuf,
    pub peer: PathBuf,
    pub revoked: PathBuf,
}

/// Make (once per directory) and check the test PKI in `dir`.
pub fn pki(dir: &Path) -> Result<Pki, String> {
    let script = scripts_dir().join("mkcerts.sh");
    let d = dir.display().to_string();
    cmd(&["bash", &script.display().to_string(), &d, "ours", "peer"])?;
    // Our daemon's [X509-Certificates] directories hold nothing else (see ours::conf).
    let conf = dir.join("ours-conf");
    for (sub, from, to) in [
        ("ca", "ca.pem", "ca.pem"),
        ("certs", "ours.pem", "ours.pem"),
        ("crls", "crl.pem", "crl.pem"),
        ("", "ours.key", "local.key"),
    ] {
        let d = conf.join(sub);
        std::fs::create_dir_all(&d).map_err(|e| format!("{}: {e}", d.display()))?;
        std::fs::copy(dir.join(from), d.join(to)).map_err(|e| format!("{from}: {e}"))?;
    }
    std::fs::set_permissions(
        conf.join("local.key"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .map_err(|e| format!("local.key: {e}"))?;
    Ok(Pki {
        dir: dir.to_path_buf(),
        ca: dir.join("ca.pem"),
        crl: dir.join("crl.pem"),
        ours: dir.join("ours.pem"),
        peer: dir.join("peer.pem"),
        revoked: dir.join("revoked.pem"),
    })
}
