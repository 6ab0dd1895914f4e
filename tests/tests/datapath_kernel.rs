//! The kernel's ESP data path with hand-made SAs, no daemon: proves that the kernel this test
//! runs on (natively, or Debian's in the QEMU guest of `e2e::vm`) carries traffic through
//! tunnel-mode ESP, with AES-CBC + HMAC-SHA1 and with AES-GCM, directly and UDP-encapsulated
//! through a masquerading NAT. Each scenario first shows that the policies alone stop the
//! ping, then that the SAs carry it, by their packet counters on both sides.
//!
//! ```text
//! direct:  10.1.0.1 (lo) a 192.0.2.1 ====== 192.0.2.2 b (lo) 10.2.0.1
//! nat:     10.1.0.1 (lo) a 10.9.1.2 ==== 10.9.1.1 nat 198.51.100.1 ==== 198.51.100.2 b (lo) 10.2.0.1
//!                                                  (masquerade)
//! ```

use e2e::netns::Netns;
use std::io::Write;
use std::net::UdpSocket;
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};
use std::time::Duration;

const PINGS: u64 = 3;
const A_INNER: &str = "10.1.0.1";
const B_INNER: &str = "10.2.0.1";
const A_NET: &str = "10.1.0.0/24";
const B_NET: &str = "10.2.0.0/24";

#[derive(Clone, Copy, Debug)]
enum Algo {
    /// cbc(aes) with a 128-bit key, hmac(sha1) truncated to 96 bits: ESP_AES_CBC + HMAC_SHA1.
    CbcSha1,
    /// rfc4106(gcm(aes)): 128-bit key + 32-bit salt, 16-byte ICV.
    Gcm,
}

/// A key of `len` bytes, different for each SPI, in `ip xfrm`'s hex form.
fn key(spi: u32, len: usize) -> String {
    let mut k = String::from("0x");
    for i in 0..len {
        k.push_str(&format!("{:02x}", (spi as usize * 31 + i * 7) & 0xff));
    }
    k
}

/// Run `ip -n NS -batch -` with `lines`: one process for many commands, which matters in
/// the guest, where every exec costs a good part of a second.
fn ip_batch(ns: &Netns, lines: &[String]) {
    let mut child = Command::new("ip")
        .args(["-n", &ns.name, "-batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ip -batch");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(lines.join("\n").as_bytes()).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "ip -n {} -batch failed: {}\n{}",
        ns.name,
        String::from_utf8_lossy(&out.stderr),
        lines.join("\n")
    );
}

/// One SA of one direction, tunnel mode: `src` -> `dst` with `spi`.
struct Sa<'a> {
    src: &'a str,
    dst: &'a str,
    spi: u32,
}

impl Sa<'_> {
    /// The `ip xfrm state add` line (for [`ip_batch`]); `encap` is ESP-in-UDP (RFC 3948)
    /// with these ports.
    fn add(&self, algo: Algo, encap: Option<(u16, u16)>) -> String {
        let (src, dst, spi) = (self.src, self.dst, self.spi);
        let mut line = format!(
            "xfrm state add src {src} dst {dst} proto esp spi {spi:#x} reqid 1 mode tunnel"
        );
        match algo {
            Algo::CbcSha1 => {
                line += &format!(
                    " enc cbc(aes) {} auth-trunc hmac(sha1) {} 96",
                    key(spi, 16),
                    key(spi + 1, 20)
                )
            }
            Algo::Gcm => line += &format!(" aead rfc4106(gcm(aes)) {} 128", key(spi, 20)),
        }
        if let Some((sport, dport)) = encap {
            line += &format!(" encap espinudp {sport} {dport} 0.0.0.0");
        }
        line
    }

    /// Packets this SA processed, from the `lifetime current:` block of its entry in
    /// `ip -s xfrm state` of `ns`.
    fn packets(&self, ns: &Netns) -> u64 {
        let out = ns
            .exec(&["ip", "-s", "xfrm", "state", "list"])
            .expect("ip -s xfrm state");
        let (head, spi) = (
            format!("src {} dst {}", self.src, self.dst),
            format!("spi 0x{:08x}", self.spi),
        );
        let mut lines = out.lines();
        while let Some(l) = lines.next() {
            if l != head {
                continue;
            }
            let entry: Vec<&str> = lines
                .clone()
                .take_while(|l| l.starts_with(char::is_whitespace))
                .collect();
            if !entry.first().is_some_and(|l| l.contains(&spi)) {
                continue;
            }
            // "lifetime current:" then "  840(bytes), 10(packets)"
            let counts = entry
                .iter()
                .skip_while(|l| !l.contains("lifetime current:"))
                .nth(1)
                .unwrap_or_else(|| panic!("no lifetime counters in:\n{out}"));
            return counts
                .split(',')
                .find_map(|f| f.trim().strip_suffix("(packets)"))
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("no packet count in {counts:?} of:\n{out}"));
        }
        panic!("no SA {head} {spi} in {}:\n{out}", ns.name);
    }
}

/// The `ip xfrm policy add` lines of tunnel-mode policies between inner networks `here` and
/// `there`, through `local` and `remote` (the outer addresses as this side sees them).
fn policies(here: &str, there: &str, local: &str, remote: &str) -> Vec<String> {
    [
        ("out", here, there, local, remote),
        ("in", there, here, remote, local),
    ]
    .iter()
    .map(|(dir, src, dst, tsrc, tdst)| {
        format!(
            "xfrm policy add src {src} dst {dst} dir {dir} \
                 tmpl src {tsrc} dst {tdst} proto esp reqid 1 mode tunnel"
        )
    })
    .collect()
}

fn ping(ns: &Netns, count: u64, wait: &str) -> Result<String, String> {
    let count = count.to_string();
    ns.exec(&[
        "ping", "-n", "-c", &count, "-i", "0.2", "-W", wait, "-I", A_INNER, B_INNER,
    ])
}

/// Ping a -> b inner to inner must fail with the policies and no SAs (they are in force),
/// then pass once `sas` are installed; every SA must have counted the pings.
fn prove(a: &Netns, b: &Netns, sas: &[(&Netns, &Sa, String)]) {
    if let Ok(out) = ping(a, 1, "1") {
        panic!("ping crossed with policies but no SAs, in clear:\n{out}");
    }
    for ns in [a, b] {
        let lines: Vec<String> = sas
            .iter()
            .filter(|(n, _, _)| n.name == ns.name)
            .map(|(_, _, line)| line.clone())
            .collect();
        ip_batch(ns, &lines);
    }
    if let Err(e) = ping(a, PINGS, "5") {
        let states: String = [a, b]
            .iter()
            .map(|ns| ns.exec(&["ip", "-s", "xfrm", "state"]).unwrap_or_default())
            .collect();
        panic!("ping over ESP failed: {e}\n{states}");
    }
    for (ns, sa, _) in sas {
        let n = sa.packets(ns);
        assert!(
            n >= PINGS,
            "SA {:#x} {} -> {} in {} counted {n} packets, want >= {PINGS}",
            sa.spi,
            sa.src,
            sa.dst,
            ns.name
        );
    }
}

/// Two namespaces on one veth, inner addresses on lo, routes to each other's inner network.
fn direct(tag: &str) -> (Netns, Netns) {
    let a = Netns::new(&format!("{tag}a")).expect("netns a");
    let b = Netns::new(&format!("{tag}b")).expect("netns b");
    Netns::link_named(&a, "fzout", "192.0.2.1/24", &b, "fzout", "192.0.2.2/24").expect("veth");
    for (ns, inner, there, via) in [
        (&a, A_INNER, B_NET, "192.0.2.2"),
        (&b, B_INNER, A_NET, "192.0.2.1"),
    ] {
        ip_batch(
            ns,
            &[
                format!("addr add {inner}/32 dev lo"),
                format!("route add {there} via {via}"),
            ],
        );
    }
    (a, b)
}

fn direct_tunnel(tag: &str, algo: Algo) {
    let (a, b) = direct(tag);
    let ab = Sa {
        src: "192.0.2.1",
        dst: "192.0.2.2",
        spi: 0x1001,
    };
    let ba = Sa {
        src: "192.0.2.2",
        dst: "192.0.2.1",
        spi: 0x2001,
    };
    ip_batch(&a, &policies(A_NET, B_NET, "192.0.2.1", "192.0.2.2"));
    ip_batch(&b, &policies(B_NET, A_NET, "192.0.2.2", "192.0.2.1"));
    prove(
        &a,
        &b,
        &[
            (&a, &ab, ab.add(algo, None)),
            (&a, &ba, ba.add(algo, None)),
            (&b, &ab, ab.add(algo, None)),
            (&b, &ba, ba.add(algo, None)),
        ],
    );
}

#[test]
fn esp_tunnel_aes_cbc_hmac_sha1() {
    e2e::require_esp!();
    direct_tunnel("cbc", Algo::CbcSha1);
}

#[test]
fn esp_tunnel_aes_gcm() {
    e2e::require_esp!();
    direct_tunnel("gcm", Algo::Gcm);
}

/// A UDP socket on port 4500 in `ns` with `UDP_ENCAP_ESPINUDP` set: the kernel decapsulates
/// ESP arriving in UDP only on such a socket (an IKE daemon's NAT-T socket). Held open while
/// the value lives.
fn encap_socket(ns: &Netns) -> UdpSocket {
    const UDP_ENCAP: libc::c_int = 100;
    const UDP_ENCAP_ESPINUDP: libc::c_int = 2;
    let path = format!("/run/netns/{}", ns.name);
    // setns(2) moves only the calling thread: do it on a thread of its own.
    std::thread::spawn(move || {
        let f = std::fs::File::open(&path).expect("open the namespace");
        // SAFETY: a valid fd of a network namespace; affects this thread only.
        let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
        let sock = UdpSocket::bind("0.0.0.0:4500").expect("bind 4500 in the namespace");
        let on: libc::c_int = UDP_ENCAP_ESPINUDP;
        // SAFETY: a valid socket and a c_int option value of the size given.
        let rc = unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::IPPROTO_UDP,
                UDP_ENCAP,
                (&on as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(rc, 0, "UDP_ENCAP: {}", std::io::Error::last_os_error());
        sock
    })
    .join()
    .expect("encap socket thread")
}

#[test]
fn esp_in_udp_through_masquerading_nat() {
    e2e::require_esp!();
    let a = Netns::new("nata").expect("netns a");
    let nat = Netns::new("natn").expect("netns nat");
    let b = Netns::new("natb").expect("netns b");
    Netns::link_named(&a, "fzout", "10.9.1.2/24", &nat, "fzin", "10.9.1.1/24").expect("veth a");
    Netns::link_named(
        &nat,
        "fzout",
        "198.51.100.1/24",
        &b,
        "fzout",
        "198.51.100.2/24",
    )
    .expect("veth b");
    nat.exec(&["sysctl", "-qw", "net.ipv4.ip_forward=1"])
        .unwrap();
    nat.exec(&[
        "nft",
        "add table ip fznat; \
         add chain ip fznat post { type nat hook postrouting priority srcnat; }; \
         add rule ip fznat post oifname fzout counter masquerade",
    ])
    .unwrap_or_else(|e| panic!("nft masquerade: {e}"));
    ip_batch(
        &a,
        &[
            format!("addr add {A_INNER}/32 dev lo"),
            "route add default via 10.9.1.1".into(),
        ],
    );
    // b knows a only as the NAT's public address.
    ip_batch(
        &b,
        &[
            format!("addr add {B_INNER}/32 dev lo"),
            format!("route add {A_NET} via 198.51.100.1"),
        ],
    );
    let _sockets = (encap_socket(&a), encap_socket(&b));

    // a sees b as it is; b sees a as the NAT's address, both on port 4500.
    let ab_a = Sa {
        src: "10.9.1.2",
        dst: "198.51.100.2",
        spi: 0x3001,
    };
    let ab_b = Sa {
        src: "198.51.100.1",
        dst: "198.51.100.2",
        spi: 0x3001,
    };
    let ba_b = Sa {
        src: "198.51.100.2",
        dst: "198.51.100.1",
        spi: 0x4001,
    };
    let ba_a = Sa {
        src: "198.51.100.2",
        dst: "10.9.1.2",
        spi: 0x4001,
    };
    ip_batch(&a, &policies(A_NET, B_NET, "10.9.1.2", "198.51.100.2"));
    ip_batch(&b, &policies(B_NET, A_NET, "198.51.100.2", "198.51.100.1"));
    let (algo, encap) = (Algo::Gcm, Some((4500, 4500)));
    prove(
        &a,
        &b,
        &[
            (&a, &ab_a, ab_a.add(algo, encap)),
            (&a, &ba_a, ba_a.add(algo, encap)),
            (&b, &ab_b, ab_b.add(algo, encap)),
            (&b, &ba_b, ba_b.add(algo, encap)),
        ],
    );
    // The NAT did translate: its masquerade rule counted the first packet of the flow.
    let rules = nat.exec(&["nft", "list", "table", "ip", "fznat"]).unwrap();
    let masq = rules
        .lines()
        .find(|l| l.contains("masquerade"))
        .unwrap_or_else(|| panic!("no masquerade rule in:\n{rules}"));
    assert!(
        !masq.contains("packets 0 "),
        "masquerade never used: {masq}"
    );
    // And the kernel encapsulated: b's SA towards a is espinudp.
    let state = b.exec(&["ip", "xfrm", "state", "list"]).unwrap();
    assert!(
        state.contains("encap type espinudp"),
        "no UDP encapsulation:\n{state}"
    );
}

/// Boots one guest for all `esp_` tests above when the host's kernel has no ESP.
#[test]
fn guest_runs_esp_tests() {
    e2e::vm::run_tests_in_guest("esp_", Duration::from_secs(900));
}
