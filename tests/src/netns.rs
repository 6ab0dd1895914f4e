//! Network namespaces and veth links made (and removed) by a test.

use std::net::{SocketAddr, UdpSocket};
use std::process::Command;

/// Run a command, returning its stdout, or an error naming the command and its stderr.
pub fn run(args: &[&str]) -> Result<String, String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{args:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A network namespace, deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    /// `fzike<pid><tag>`: unique per test process and tag.
    pub fn new(tag: &str) -> Result<Self, String> {
        let name = format!("fzike{}{tag}", std::process::id());
        let _ = run(&["ip", "netns", "del", &name]);
        run(&["ip", "netns", "add", &name])?;
        let ns = Self { name };
        ns.exec(&["ip", "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// Run a command inside the namespace.
    pub fn exec(&self, args: &[&str]) -> Result<String, String> {
        let mut full = vec!["ip", "netns", "exec", &self.name];
        full.extend_from_slice(args);
        run(&full)
    }

    /// Join two namespaces with a veth pair and give each end an address (CIDR form).
    pub fn link(a: &Netns, a_addr: &str, b: &Netns, b_addr: &str) -> Result<(), String> {
        let (ia, ib) = (
            format!("v{}", &a.name[a.name.len().saturating_sub(8)..]),
            format!("v{}", &b.name[b.name.len().saturating_sub(8)..]),
        );
        Self::link_named(a, &ia, a_addr, b, &ib, b_addr)
    }

    /// As [`Netns::link`], with the interfaces' names given: for a namespace with several
    /// links (a router), whose default names would collide.
    pub fn link_named(
        a: &Netns,
        ia: &str,
        a_addr: &str,
        b: &Netns,
        ib: &str,
        b_addr: &str,
    ) -> Result<(), String> {
        // Each end is made in its namespace directly: names need only be unique there.
        run(&[
            "ip", "link", "add", ia, "netns", &a.name, "type", "veth", "peer", "name", ib, "netns",
            &b.name,
        ])?;
        a.exec(&["ip", "addr", "add", a_addr, "dev", ia])?;
        b.exec(&["ip", "addr", "add", b_addr, "dev", ib])?;
        a.exec(&["ip", "link", "set", ia, "up"])?;
        b.exec(&["ip", "link", "set", ib, "up"])?;
        Ok(())
    }
}

impl Netns {
    /// Source NAT (masquerade) of everything leaving by `wan`: nftables where it is, else
    /// iptables.
    pub fn masquerade(&self, wan: &str) {
        let nft = self
            .exec(&["nft", "add", "table", "ip", "fznat"])
            .and_then(|_| {
                self.exec(&[
                    "nft",
                    "add chain ip fznat post { type nat hook postrouting priority 100 ; }",
                ])
            })
            .and_then(|_| {
                self.exec(&[
                    "nft",
                    &format!("add rule ip fznat post oifname \"{wan}\" masquerade"),
                ])
            });
        if let Err(e) = nft {
            eprintln!("nft masquerade failed ({e}); trying iptables");
            self.exec(&[
                "iptables",
                "-t",
                "nat",
                "-A",
                "POSTROUTING",
                "-o",
                wan,
                "-j",
                "MASQUERADE",
            ])
            .expect("masquerade with iptables");
        }
    }

    /// Runs `f` on a thread of its own inside the namespace (setns(2) moves only the
    /// calling thread) and returns its value: a socket made there stays in the namespace.
    pub fn within<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T, String> + Send + 'static,
    ) -> Result<T, String> {
        let path = format!("/var/run/netns/{}", self.name);
        std::thread::spawn(move || {
            let file = std::fs::File::open(&path).map_err(|e| format!("{path}: {e}"))?;
            nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(|e| format!("setns {path}: {e}"))?;
            f()
        })
        .join()
        .map_err(|_| "the thread inside the namespace panicked".to_string())?
    }

    /// A UDP socket bound to `addr` inside the namespace.
    pub fn udp_socket(&self, addr: SocketAddr) -> Result<UdpSocket, String> {
        self.within(move || UdpSocket::bind(addr).map_err(|e| format!("bind {addr}: {e}")))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Processes still inside would keep it alive; the daemons are killed before this.
        let _ = run(&["ip", "netns", "del", &self.name]);
    }
}
