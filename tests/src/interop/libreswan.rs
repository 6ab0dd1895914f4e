//! A private Libreswan IKEv1 peer: pluto from the root `tests/interop/setup.sh` unpacks
//! (Debian's package conflicts with strongSwan's), with its own ipsec.conf, secrets, NSS
//! database and control socket, driven by whack. Started once; each scenario replaces its
//! one connection `fz` (`whack --delete`, then `addconn`).
//!
//! pluto runs `/usr/libexec/ipsec/addconn` and `_updown` by their installed paths, so the
//! private root's `usr/libexec` is bind-mounted over `/usr/libexec` in the mount namespace
//! `ip netns exec` gives it; the host's is untouched. Libreswan always installs its IPsec
//! SAs in the kernel: on a kernel without ESP, phase 1 completes and phase 2 fails there
//! (`netlink response for Add SA ...: Protocol not supported`).

use super::run::Peer;
use super::suite::{Cipher, Conn, Esp, Hash, Id, Ike};
use crate::netns::{run as cmd, Netns};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Where pluto, whack and addconn are.
pub fn bin_dir() -> PathBuf {
    super::libreswan_root().join("usr/libexec/ipsec")
}

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
        Hash::Sha256 => "sha2_256",
    }
}

fn group(g: u16) -> String {
    match g {
        2 => "modp1024".into(),
        5 => "modp1536".into(),
        14 => "modp2048".into(),
        15 => "modp3072".into(),
        16 => "modp4096".into(),
        n => format!("dh{n}"),
    }
}

/// `ike=...`, e.g. `aes128-sha1;modp2048`.
pub fn ike_proposal(i: &Ike) -> String {
    format!("{}-{};{}", cipher(i.cipher), hash(i.hash), group(i.group))
}

/// `phase2alg=...`: a group after `;` is the PFS group.
pub fn esp_proposal(e: &Esp) -> String {
    let mut s = format!("{}-{}", cipher(e.cipher), hash(e.hash));
    if let Some(g) = e.pfs {
        s += ";";
        s += &group(g);
    }
    s
}

fn id(i: &Id) -> String {
    match i {
        Id::Addr(a) => a.clone(),
        Id::Fqdn(f) => format!("@{f}"),
        Id::Dn(d) => format!("\"{d}\""),
    }
}

pub struct Libreswan {
    ns: String,
    dir: PathBuf,
    child: Option<Child>,
    conn: Option<Conn>,
}

impl Libreswan {
    /// Start pluto in `ns` with its files in `dir` (created, emptied).
    pub fn start(ns: &Netns, dir: &Path) -> Result<Self, String> {
        let _ = std::fs::remove_dir_all(dir);
        for sub in ["nss", "run", "ipsec.d/policies"] {
            std::fs::create_dir_all(dir.join(sub))
                .map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let nss = format!("sql:{}", dir.join("nss").display());
        cmd(&["certutil", "-N", "-d", &nss, "--empty-password"])?;
        // The X.509 scenario's PKI goes into the NSS database before pluto opens it: the
        // CA (trusted), the CRL, and the certificates it may show (nicknames `peer`,
        // `revoked`) with their keys.
        let state = dir.parent().unwrap_or(dir);
        let pki = super::pki(&state.join("pki"))?;
        let ca = pki.ca.display().to_string();
        cmd(&[
            "certutil", "-A", "-d", &nss, "-n", "fzca", "-t", "CT,,", "-i", &ca,
        ])?;
        let crl = pki.dir.join("crl.der").display().to_string();
        cmd(&["crlutil", "-I", "-d", &nss, "-i", &crl])?;
        for n in ["peer", "revoked"] {
            let p12 = dir.join(format!("{n}.p12")).display().to_string();
            let pem = pki.dir.join(format!("{n}.pem")).display().to_string();
            let key = pki.dir.join(format!("{n}.key")).display().to_string();
            cmd(&[
                "openssl", "pkcs12", "-export", "-in", &pem, "-inkey", &key, "-name", n, "-out",
                &p12, "-passout", "pass:",
            ])?;
            cmd(&["pk12util", "-i", &p12, "-d", &nss, "-W", ""])?;
        }
        let mut l = Self {
            ns: ns.name.clone(),
            dir: dir.to_path_buf(),
            child: None,
            conn: None,
        };
        l.write_files(None)?;
        l.spawn()?;
        Ok(l)
    }

    fn p(&self, f: &str) -> String {
        self.dir.join(f).display().to_string()
    }

    fn ctl(&self) -> String {
        self.p("run/pluto.ctl")
    }

    /// ipsec.conf (with `conn fz` for `c`, if any) and ipsec.secrets.
    fn write_files(&self, c: Option<&Conn>) -> Result<(), String> {
        let mut conf = format!(
            "# written by the e2e interop driver
config setup
    logfile={log}
    logappend=yes
    logtime=yes
    plutodebug=none
    nssdir={nss}
    ipsecdir={ipsecd}
    secretsfile={secrets}
    dumpdir={run}
    uniqueids=no
    ikev1-policy=accept
    keep-alive=2
",
            log = self.p("pluto.log"),
            nss = self.p("nss"),
            ipsecd = self.p("ipsec.d"),
            secrets = self.p("ipsec.secrets"),
            run = self.p("run"),
        );
        let mut secrets = format!("%any %any : PSK \"{}\"\n", super::PSK);
        if let Some(c) = c {
            let (lid, rid) = (id(&c.peer_id), id(&c.ours_id));
            if c.x509.is_none() {
                secrets = format!("{lid} {rid} : PSK \"{}\"\n{secrets}", super::PSK);
            }
            let subnets = if c.transport {
                String::new()
            } else {
                format!(
                    "    leftsubnet={}\n    rightsubnet={}\n",
                    super::PEER_NET,
                    super::OURS_NET
                )
            };
            let mut life = String::from("    rekey=no\n");
            if c.ike_life.is_some() || c.esp_life.is_some() {
                life = String::from("    rekey=yes\n    rekeyfuzz=0%\n");
                let l = c.esp_life.unwrap_or(3600).min(c.ike_life.unwrap_or(3600));
                life += &format!("    rekeymargin={}s\n", (l / 3).max(1));
            }
            if let Some(l) = c.ike_life {
                life += &format!("    ikelifetime={l}s\n");
            }
            if let Some(l) = c.esp_life {
                life += &format!("    salifetime={l}s\n");
            }
            conf += &format!(
                "
conn fz
    ikev2=no
    authby={authby}
    aggressive={aggr}{certs}
    type={mode}
    left={left}
    leftid={lid}
    right={right}
    rightid={rid}
{subnets}    ike={ike}
    phase2=esp
    phase2alg={esp}
    pfs={pfs}
    encapsulation=auto
    nat-keepalive=yes
    leftupdown=%disabled
    keyingtries=1
{life}    auto={auto}
",
                aggr = if c.aggressive { "yes" } else { "no" },
                mode = if c.transport { "transport" } else { "tunnel" },
                left = c.peer_addr,
                right = c.peer_sees_ours,
                ike = ike_proposal(&c.peer_ike),
                esp = esp_proposal(&c.peer_esp),
                pfs = if c.peer_esp.pfs.is_some() {
                    "yes"
                } else {
                    "no"
                },
                auto = if c.peer_autostart { "start" } else { "add" },
                authby = if c.x509.is_some() { "rsasig" } else { "secret" },
                certs = c.x509.as_ref().map_or(String::new(), |x| format!(
                    "\n    leftcert={}\n    leftsendcert=always",
                    x.peer_cert
                )),
            );
        }
        std::fs::write(self.dir.join("ipsec.conf"), conf).map_err(|e| e.to_string())?;
        let sp = self.dir.join("ipsec.secrets");
        std::fs::write(&sp, secrets).map_err(|e| e.to_string())?;
        std::fs::set_permissions(&sp, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .map_err(|e| e.to_string())
    }

    fn spawn(&mut self) -> Result<(), String> {
        for f in ["run/pluto.ctl", "run/pluto.pid"] {
            let _ = std::fs::remove_file(self.dir.join(f));
        }
        let out =
            std::fs::File::create(self.dir.join("pluto.stderr")).map_err(|e| e.to_string())?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let libexec = super::libreswan_root().join("usr/libexec");
        let script = format!(
            "mount --bind '{}' /usr/libexec && exec /usr/libexec/ipsec/pluto --nofork --config '{}' \
             --rundir '{}' --nssdir '{}' --secretsfile '{}' --ipsecdir '{}' --logfile '{}'",
            libexec.display(),
            self.p("ipsec.conf"),
            self.p("run"),
            self.p("nss"),
            self.p("ipsec.secrets"),
            self.p("ipsec.d"),
            self.p("pluto.log"),
        );
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns, "sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("starting pluto: {e}"))?;
        self.child = Some(child);
        let ctl = self.dir.join("run/pluto.ctl");
        if !crate::wait_until(Duration::from_secs(10), || ctl.exists()) {
            return Err(format!(
                "pluto did not open {}:\n{}",
                ctl.display(),
                super::tail(&self.dir.join("pluto.stderr"), 20)
            ));
        }
        self.whack(&["--listen"])?;
        Ok(())
    }

    fn whack(&self, args: &[&str]) -> Result<String, String> {
        let bin = bin_dir().join("whack").display().to_string();
        let ctl = self.ctl();
        let mut full = vec!["ip", "netns", "exec", &self.ns, &bin, "--ctlsocket", &ctl];
        full.extend_from_slice(args);
        cmd(&full)
    }

    fn states(&self) -> Vec<String> {
        self.whack(&["--status"])
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("\"fz\"") && l.contains("STATE_"))
            .map(str::to_string)
            .collect()
    }
}

impl Peer for Libreswan {
    fn name(&self) -> &'static str {
        "libreswan"
    }

    fn load(&mut self, c: &Conn) -> Result<Option<String>, String> {
        // Deleting the connection deletes its states (with deletes sent to us).
        let _ = self.whack(&["--delete", "--name", "fz"]);
        self.write_files(Some(c))?;
        let addconn = bin_dir().join("addconn").display().to_string();
        let (conf, ctl) = (self.p("ipsec.conf"), self.ctl());
        let r = cmd(&[
            "ip",
            "netns",
            "exec",
            &self.ns,
            &addconn,
            "--config",
            &conf,
            "--ctlsocket",
            &ctl,
            "fz",
        ]);
        self.whack(&["--rereadsecrets"])?;
        let listed = self.whack(&["--status"]).unwrap_or_default();
        if !listed.contains("\"fz\"") {
            // addconn exits 36 and pluto logs why: "failed to add connection: ...".
            let log = std::fs::read_to_string(self.dir.join("pluto.log")).unwrap_or_default();
            let why = log
                .lines()
                .rev()
                .find_map(|l| l.split_once("failed to add connection: ").map(|x| x.1))
                .map(str::to_string)
                .unwrap_or_else(|| match &r {
                    Ok(out) => out.clone(),
                    Err(e) => e.clone(),
                });
            if why.contains("'modp1024' is not supported") {
                return Ok(Some(format!("peer lacks MODP1024 (pluto: {why})")));
            }
            return Err(format!("Libreswan did not load conn fz: {why}"));
        }
        self.conn = Some(c.clone());
        if c.peer_autostart {
            let _ = self.whack(&["--name", "fz", "--initiate", "--asynchronous"]);
        }
        Ok(None)
    }

    fn initiate(&mut self) -> Result<(), String> {
        self.whack(&["--name", "fz", "--initiate", "--asynchronous"])
            .map(|_| ())
    }

    fn terminate(&mut self) -> Result<(), String> {
        self.whack(&["--name", "fz", "--terminate"]).map(|_| ())
    }

    fn status(&self) -> String {
        self.states().join("\n")
    }

    fn ike_up(&self) -> bool {
        self.states().iter().any(|l| {
            [
                "STATE_MAIN_R3",
                "STATE_MAIN_I4",
                "STATE_AGGR_R2",
                "STATE_AGGR_I2",
            ]
            .iter()
            .any(|s| l.contains(s))
        })
    }

    fn child_up(&self) -> bool {
        self.states()
            .iter()
            .any(|l| l.contains("STATE_QUICK_R2") || l.contains("STATE_QUICK_I2"))
    }

    fn nat_seen(&self) -> bool {
        // With a NAT detected, the ISAKMP SA floats to port 4500: `"fz":4500 STATE_...`.
        self.states().iter().any(|l| l.contains("\"fz\":4500"))
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
            if let Some(why) = self.load(&c)? {
                return Err(why);
            }
        }
        Ok(())
    }

    fn log(&self) -> String {
        super::tail(&self.dir.join("pluto.log"), 40)
    }

    fn log_contains(&self, needle: &str) -> bool {
        std::fs::read_to_string(self.dir.join("pluto.log"))
            .unwrap_or_default()
            .contains(needle)
    }

    fn log_count(&self, needle: &str) -> usize {
        std::fs::read_to_string(self.dir.join("pluto.log"))
            .unwrap_or_default()
            .matches(needle)
            .count()
    }

    fn phase2_possible(&self, _: &Conn) -> Result<(), String> {
        if super::esp_available() {
            Ok(())
        } else {
            Err("Libreswan installs its IPsec SAs in the kernel, which has no ESP here".into())
        }
    }

    fn describe(&self) -> String {
        "Libreswan 4.10 (pluto, whack; private root)".into()
    }
}

impl Drop for Libreswan {
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
