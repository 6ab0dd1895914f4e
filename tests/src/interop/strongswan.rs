//! A private strongSwan IKEv1 peer: Debian's charon with its own strongswan.conf, driven
//! over its own vici socket by swanctl. Started once; each scenario replaces its one
//! connection `fz` with `swanctl --load-all` (which unloads what the file no longer has).
//!
//! charon writes `/var/run/charon.pid` whatever it is told, so it runs with a private
//! directory bind-mounted over `/run` in the mount namespace `ip netns exec` gives it.
//! On a kernel without ESP it uses kernel-libipsec (ESP in userspace over a TUN device),
//! which always encapsulates ESP in UDP: it then forces NAT-T even without a NAT.

use super::run::Peer;
use super::suite::{Cipher, Conn, Esp, Hash, Id, Ike};
use crate::netns::{run as cmd, Netns};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const CHARON: &str = "/usr/lib/ipsec/charon";

fn cipher(c: Cipher) -> &'static str {
    match c {
        Cipher::Aes128 => "aes128",
        Cipher::Aes256 => "aes256",
        Cipher::TripleDes => "3des",
    }
}

fn hash(h: Hash) -> &'static str {
    match h {
        Hash::Sha1 => "sha1",
        Hash::Sha256 => "sha256",
    }
}

fn group(g: u16) -> String {
    match g {
        19 => "ecp256".into(),
        20 => "ecp384".into(),
        21 => "ecp521".into(),
        1 => "modp768".into(),
        2 => "modp1024".into(),
        5 => "modp1536".into(),
        14 => "modp2048".into(),
        15 => "modp3072".into(),
        16 => "modp4096".into(),
        n => format!("unknown{n}"),
    }
}

/// `proposals = ...` for a phase 1 transform, e.g. `aes128-sha1-modp2048`.
pub fn ike_proposal(i: &Ike) -> String {
    format!("{}-{}-{}", cipher(i.cipher), hash(i.hash), group(i.group))
}

/// `esp_proposals = ...`: a DH group in it means PFS.
pub fn esp_proposal(e: &Esp) -> String {
    let mut s = format!("{}-{}", cipher(e.cipher), hash(e.hash));
    if let Some(g) = e.pfs {
        s += "-";
        s += &group(g);
    }
    s
}

fn id(i: &Id) -> String {
    match i {
        Id::Addr(a) => a.clone(),
        Id::Fqdn(f) => format!("fqdn:{f}"),
        Id::Dn(d) => format!("\"{d}\""),
    }
}

/// swanctl.conf for one scenario: connection and child `fz`, and the pre-shared key.
pub fn swanctl_conf(c: &Conn) -> String {
    let (ts, mode) = if c.transport {
        (String::new(), "transport")
    } else {
        (
            format!(
                "        local_ts = {}\n        remote_ts = {}\n",
                super::PEER_NET,
                super::OURS_NET
            ),
            "tunnel",
        )
    };
    let ike_life = c.ike_life.map_or(String::new(), |l| {
        format!(
            "    rekey_time = {l}s\n    reauth_time = {l}s\n    over_time = {}s\n    rand_time = 0s\n",
            (l / 3).max(1)
        )
    });
    let esp_life = c.esp_life.map_or(String::new(), |l| {
        format!(
            "        rekey_time = {l}s\n        life_time = {}s\n        rand_time = 0s\n",
            l + (l / 3).max(1)
        )
    });
    format!(
        "# written by the e2e interop driver
connections {{
  fz {{
    version = 1
    aggressive = {aggressive}
    local_addrs = {local}
    remote_addrs = {remote}
    proposals = {ike}
    encap = no
    unique = no
    keyingtries = 1
    dpd_delay = 0
{ike_life}    local {{
      auth = {auth}
      id = {lid}
{certs}    }}
    remote {{
      auth = {auth}
      id = {rid}
    }}
    children {{
      fz {{
        mode = {mode}
        esp_proposals = {esp}
{ts}{esp_life}        start_action = {start}
        dpd_action = clear
      }}
    }}
  }}
}}
secrets {{
  ike-fz {{
    secret = \"{psk}\"
  }}
}}
",
        aggressive = if c.aggressive { "yes" } else { "no" },
        local = c.peer_addr,
        remote = c.peer_sees_ours,
        ike = ike_proposal(&c.peer_ike),
        esp = esp_proposal(&c.peer_esp),
        lid = id(&c.peer_id),
        rid = id(&c.ours_id),
        start = if c.peer_autostart { "start" } else { "none" },
        auth = if c.x509.is_some() { "pubkey" } else { "psk" },
        certs = c.x509.as_ref().map_or(String::new(), |x| format!(
            "      certs = {}.pem\n",
            x.peer_cert
        )),
        psk = super::PSK,
    )
}

pub struct StrongSwan {
    ns: String,
    dir: PathBuf,
    child: Option<Child>,
    libipsec: bool,
    conn: Option<Conn>,
}

impl StrongSwan {
    /// Start charon in `ns` with its files in `dir` (created, emptied).
    pub fn start(ns: &Netns, dir: &Path) -> Result<Self, String> {
        let mut s = Self {
            ns: ns.name.clone(),
            dir: dir.to_path_buf(),
            child: None,
            libipsec: !super::esp_available(),
            conn: None,
        };
        let _ = std::fs::remove_dir_all(dir);
        for sub in [
            "varrun",
            "swanctl/x509",
            "swanctl/x509ca",
            "swanctl/x509crl",
            "swanctl/private",
        ] {
            std::fs::create_dir_all(dir.join(sub))
                .map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        s.spawn()?;
        Ok(s)
    }

    fn uri(&self) -> String {
        format!("unix://{}", self.dir.join("charon.vici").display())
    }

    fn spawn(&mut self) -> Result<(), String> {
        let d = &self.dir;
        let plugins = if self.libipsec {
            "kernel-libipsec kernel-netlink"
        } else {
            "kernel-netlink"
        };
        let conf = format!(
            "# written by the e2e interop driver (kernel: {})
charon {{
  load = random nonce openssl pem pkcs1 pkcs8 x509 revocation constraints pubkey aes sha1 sha2 hmac gmp curve25519 {plugins} socket-default vici
  port = 500
  port_nat_t = 4500
  retransmit_timeout = 1.0
  retransmit_tries = 2
  keep_alive = 2s
  close_ike_on_child_failure = yes
  i_dont_care_about_security_and_use_aggressive_mode_psk = yes
  install_routes = {routes}
  syslog {{
    daemon {{
      default = -1
    }}
  }}
  filelog {{
    fz {{
      path = {log}
      time_format = %T
      default = 1
      ike = 2
      cfg = 1
      knl = 1
      flush_line = yes
      append = yes
    }}
  }}
  plugins {{
    vici {{
      socket = {uri}
    }}
    kernel-libipsec {{
      allow_peer_ts = yes
    }}
  }}
}}
",
            if self.libipsec { "libipsec" } else { "netlink" },
            routes = if self.libipsec { "yes" } else { "no" },
            log = d.join("charon.log").display(),
            uri = self.uri(),
        );
        std::fs::write(d.join("strongswan.conf"), conf).map_err(|e| e.to_string())?;
        for f in ["charon.vici", "varrun/charon.pid", "varrun/charon.ctl"] {
            let _ = std::fs::remove_file(d.join(f));
        }
        let out = std::fs::File::create(d.join("charon.stdout")).map_err(|e| e.to_string())?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let script = format!(
            "mount --bind '{}' /run && exec env STRONGSWAN_CONF='{}' {CHARON}",
            d.join("varrun").display(),
            d.join("strongswan.conf").display()
        );
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns, "sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("starting charon: {e}"))?;
        self.child = Some(child);
        let sock = d.join("charon.vici");
        if !crate::wait_until(Duration::from_secs(10), || sock.exists()) {
            return Err(format!(
                "charon did not open {}:\n{}",
                sock.display(),
                super::tail(&d.join("charon.stdout"), 20)
            ));
        }
        Ok(())
    }

    fn swanctl(&self, args: &[&str]) -> Result<String, String> {
        let uri = self.uri();
        let mut full = vec!["env"];
        let swdir = format!("SWANCTL_DIR={}", self.dir.join("swanctl").display());
        full.push(&swdir);
        full.extend_from_slice(&["swanctl", args[0], "--uri", &uri]);
        full.extend_from_slice(&args[1..]);
        cmd(&full)
    }
}

impl Peer for StrongSwan {
    fn name(&self) -> &'static str {
        "strongswan"
    }

    fn load(&mut self, c: &Conn) -> Result<Option<String>, String> {
        // Old SAs go first, with deletes to us: a new scenario starts from nothing.
        let _ = self.swanctl(&["--terminate", "--ike", "fz", "--force", "--timeout", "2"]);
        let sw = self.dir.join("swanctl");
        // Credentials: only the ones this scenario uses (--clear drops the others).
        for sub in ["x509", "x509ca", "x509crl", "private"] {
            let d = sw.join(sub);
            let _ = std::fs::remove_dir_all(&d);
            std::fs::create_dir_all(&d).map_err(|e| format!("{}: {e}", d.display()))?;
        }
        if let Some(x) = &c.x509 {
            let n = x.peer_cert;
            for (from, to) in [
                (format!("{n}.pem"), format!("x509/{n}.pem")),
                (format!("{n}.key"), format!("private/{n}.key")),
                ("ca.pem".into(), "x509ca/ca.pem".into()),
                ("crl.pem".into(), "x509crl/crl.pem".into()),
            ] {
                std::fs::copy(x.pki.join(&from), sw.join(&to))
                    .map_err(|e| format!("{from}: {e}"))?;
            }
        }
        let file = sw.join("swanctl.conf");
        std::fs::write(&file, swanctl_conf(c)).map_err(|e| e.to_string())?;
        let f = file.display().to_string();
        self.swanctl(&["--load-all", "--clear", "--noprompt", "--file", &f])?;
        self.conn = Some(c.clone());
        Ok(None)
    }

    fn initiate(&mut self) -> Result<(), String> {
        self.swanctl(&["--initiate", "--child", "fz", "--timeout", "10"])
            .map(|_| ())
    }

    fn terminate(&mut self) -> Result<(), String> {
        self.swanctl(&["--terminate", "--ike", "fz", "--timeout", "5"])
            .map(|_| ())
    }

    fn status(&self) -> String {
        self.swanctl(&["--list-sas"]).unwrap_or_else(|e| e)
    }

    fn ike_up(&self) -> bool {
        self.status().contains("ESTABLISHED, IKEv1")
    }

    fn child_up(&self) -> bool {
        self.status().contains("INSTALLED, ")
    }

    fn nat_seen(&self) -> bool {
        // swanctl shows the NAT side with the IKE SA's flags (libipsec fakes one always).
        let s = self.status();
        s.contains("NAT") || s.contains("[4500]")
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn restart(&mut self) -> Result<(), String> {
        self.kill();
        self.spawn()?;
        if let Some(c) = self.conn.clone() {
            self.load(&c)?;
        }
        Ok(())
    }

    fn log(&self) -> String {
        super::tail(&self.dir.join("charon.log"), 40)
    }

    fn log_contains(&self, needle: &str) -> bool {
        std::fs::read_to_string(self.dir.join("charon.log"))
            .unwrap_or_default()
            .contains(needle)
    }

    fn log_count(&self, needle: &str) -> usize {
        std::fs::read_to_string(self.dir.join("charon.log"))
            .unwrap_or_default()
            .matches(needle)
            .count()
    }

    fn phase2_possible(&self, c: &Conn) -> Result<(), String> {
        if self.libipsec && c.transport {
            // kernel-libipsec: "IPsec SA: unsupported mode", and NO-PROPOSAL-CHOSEN to us.
            return Err(
                "strongSwan's kernel-libipsec (no ESP in this kernel) has tunnel mode only".into(),
            );
        }
        Ok(())
    }

    fn describe(&self) -> String {
        format!(
            "strongSwan 5.9 (charon, swanctl{})",
            if self.libipsec {
                "; kernel-libipsec: userspace ESP, always UDP-encapsulated"
            } else {
                "; kernel ESP"
            }
        )
    }
}

impl Drop for StrongSwan {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            if !crate::wait_until(Duration::from_secs(3), || {
                c.try_wait().ok().flatten().is_some()
            }) {
                let _ = c.kill();
            }
            let _ = c.wait();
        }
    }
}
