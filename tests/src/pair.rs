//! Two gateways, east and west, each in its own namespace, joined by a veth pair: the
//! topology of `etc/isakmpd.conf.example-{east,west}` and `etc/demo.sh`.
//!
//! ```text
//!   10.1.0.0/16 --- east 192.0.2.1 ===== veth ===== 192.0.2.2 west --- 10.2.0.0/16
//! ```
//!
//! East initiates (its connection is in `[Phase 2] Connections`), west only answers.

use crate::daemon::Daemon;
use crate::netns::Netns;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub const EAST_ADDR: &str = "192.0.2.1";
pub const WEST_ADDR: &str = "192.0.2.2";
pub const EAST_NET: (&str, &str) = ("10.1.0.0", "255.255.0.0");
pub const WEST_NET: (&str, &str) = ("10.2.0.0", "255.255.0.0");

/// The sections the example configurations (and [`gateway_conf`] for the same topology) use.
pub const EAST_PEER_SECTION: &str = "peer-west";
pub const EAST_CONNECTION: &str = "IPsec-east-west";
pub const WEST_PEER_SECTION: &str = "peer-east";
pub const WEST_CONNECTION: &str = "IPsec-west-east";

/// The daemon log lines `-v` gives for completed exchanges.
pub const PHASE1_UP: &str = "phase 1 established";
pub const PHASE2_UP: &str = "phase 2 established";

/// The repository's `etc/` directory.
pub fn etc_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../etc")
}

/// `etc/isakmpd.conf.example-<side>`'s text (`side` is `east` or `west`).
pub fn example_conf(side: &str) -> Result<String, String> {
    let p = etc_dir().join(format!("isakmpd.conf.example-{side}"));
    std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))
}

/// The value of the first `Authentication=` tag of a configuration: its pre-shared key.
pub fn psk_of(conf: &str) -> Option<String> {
    conf.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .find_map(|l| l.trim().strip_prefix("Authentication="))
        .map(|v| v.trim().to_string())
}

/// How a gateway authenticates its peer in [`gateway_conf`].
pub enum Auth {
    Psk(String),
    /// Our PEM private key and the peer's PEM public key (SubjectPublicKeyInfo), as files.
    Rsa {
        private_key: PathBuf,
        peer_public_key: PathBuf,
    },
    /// X.509 certificates: `[X509-Certificates]` with our private key and the three
    /// directories under `dir`, and the bodies of our ID section and of the peer's (the
    /// `Remote-ID`), such as `ID-type=FQDN\nName=east.example\n`.
    X509 {
        dir: PathBuf,
        id: Option<String>,
        remote_id: Option<String>,
    },
}

/// One side of the east/west topology as isakmpd.conf text: a Main Mode peer
/// (AES-256-SHA2-256-GRP14, PSK or RSA signatures) and a subnet-to-subnet ESP tunnel with PFS.
pub fn gateway_conf(east: bool, auth: &Auth) -> String {
    let (local, peer, local_net, remote_net, peer_section, conn) = if east {
        (
            EAST_ADDR,
            WEST_ADDR,
            EAST_NET,
            WEST_NET,
            EAST_PEER_SECTION,
            EAST_CONNECTION,
        )
    } else {
        (
            WEST_ADDR,
            EAST_ADDR,
            WEST_NET,
            EAST_NET,
            WEST_PEER_SECTION,
            WEST_CONNECTION,
        )
    };
    let connections = if east {
        "Connections="
    } else {
        "Passive-connections="
    };
    let (x509, peer_auth, xf_suffix) = match auth {
        Auth::Psk(k) => (String::new(), format!("Authentication=\t\t{k}\n"), ""),
        Auth::Rsa {
            private_key,
            peer_public_key,
        } => (
            format!(
                "[X509-Certificates]\nPrivate-key=\t\t{}\n\n",
                private_key.display()
            ),
            format!("Public-key=\t\t{}\n", peer_public_key.display()),
            "-RSA_SIG",
        ),
        Auth::X509 { dir, id, remote_id } => {
            let mut sections = format!(
                "[X509-Certificates]\nPrivate-key=\t\t{}\nCA-directory=\t\t{}\nCert-directory=\t\t{}\nCRL-directory=\t\t{}\n\n",
                dir.join("local.key").display(),
                dir.join("ca").display(),
                dir.join("certs").display(),
                dir.join("crls").display(),
            );
            let mut tags = String::new();
            for (tag, body) in [("ID", id), ("Remote-ID", remote_id)] {
                if let Some(body) = body {
                    let section = format!("{peer_section}-{}", tag.to_ascii_lowercase());
                    tags.push_str(&format!("{tag}=\t\t\t{section}\n"));
                    sections.push_str(&format!("[{section}]\n{body}\n"));
                }
            }
            (sections, tags, "-RSA_SIG")
        }
    };
    format!(
        "\
[General]
Retransmits=\t\t5
Exchange-max-time=\t30

[Phase 1]
{peer}=\t\t{peer_section}

[Phase 2]
{connections}\t{conn}

{x509}[{peer_section}]
Phase=\t\t\t1
Transport=\t\tudp
Local-address=\t\t{local}
Address=\t\t{peer}
Configuration=\t\t{peer_section}-main-mode
{peer_auth}
[{peer_section}-main-mode]
DOI=\t\t\tIPSEC
EXCHANGE_TYPE=\t\tID_PROT
Transforms=\t\tAES-256-SHA2-256-GRP14{xf_suffix}

[{conn}]
Phase=\t\t\t2
ISAKMP-peer=\t\t{peer_section}
Configuration=\t\t{conn}-quick-mode
Local-ID=\t\t{conn}-local
Remote-ID=\t\t{conn}-remote

[{conn}-local]
ID-type=\t\tIPV4_ADDR_SUBNET
Network=\t\t{}
Netmask=\t\t{}

[{conn}-remote]
ID-type=\t\tIPV4_ADDR_SUBNET
Network=\t\t{}
Netmask=\t\t{}

[{conn}-quick-mode]
DOI=\t\t\tIPSEC
EXCHANGE_TYPE=\t\tQUICK_MODE
Suites=\t\t\tQM-ESP-AES-256-SHA2-256-PFS-GRP14-SUITE
",
        local_net.0, local_net.1, remote_net.0, remote_net.1
    )
}

/// A fresh RSA key pair from the openssl command line tool: (private key PEM, public key
/// PEM in SubjectPublicKeyInfo form).
pub fn rsa_keypair(bits: u32) -> Result<(Vec<u8>, Vec<u8>), String> {
    let out = Command::new("openssl")
        .args(["genrsa", &bits.to_string()])
        .stderr(Stdio::null())
        .output()
        .map_err(|e| format!("openssl genrsa: {e}"))?;
    if !out.status.success() || out.stdout.is_empty() {
        return Err(format!("openssl genrsa: {}", out.status));
    }
    let private = out.stdout;
    let mut child = Command::new("openssl")
        .args(["rsa", "-pubout"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("openssl rsa: {e}"))?;
    child
        .stdin
        .take()
        .ok_or("openssl rsa: no stdin")?
        .write_all(&private)
        .map_err(|e| format!("openssl rsa: {e}"))?;
    let out = child
        .wait_with_output()
        .map_err(|e| format!("openssl rsa: {e}"))?;
    if !out.status.success() || !out.stdout.starts_with(b"-----BEGIN PUBLIC KEY-----") {
        return Err(format!("openssl rsa -pubout: {}", out.status));
    }
    Ok((private, out.stdout))
}

/// The first prime of a PEM RSA private key, big-endian without leading zeros (from
/// `openssl rsa -text`): a secret a process holding the key has in memory in some form.
pub fn rsa_prime1(private_pem: &[u8]) -> Result<Vec<u8>, String> {
    let mut child = Command::new("openssl")
        .args(["rsa", "-text", "-noout"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("openssl rsa -text: {e}"))?;
    child
        .stdin
        .take()
        .ok_or("openssl rsa: no stdin")?
        .write_all(private_pem)
        .map_err(|e| format!("openssl rsa -text: {e}"))?;
    let out = child
        .wait_with_output()
        .map_err(|e| format!("openssl rsa -text: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let hex: String = text
        .lines()
        .skip_while(|l| !l.starts_with("prime1:"))
        .skip(1)
        .take_while(|l| l.starts_with(' '))
        .collect::<String>()
        .chars()
        .filter(char::is_ascii_hexdigit)
        .collect();
    let mut bytes: Vec<u8> = (0..hex.len() / 2)
        .filter_map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
        .collect();
    while bytes.first() == Some(&0) {
        bytes.remove(0);
    }
    if bytes.len() < 64 {
        return Err(format!("no prime1 in `openssl rsa -text`: {text}"));
    }
    Ok(bytes)
}

/// One gateway of [`Pair::start_x509`]: its files, and the bodies of its ID and Remote-ID
/// sections.
pub type X509Side<'a> = (&'a [(&'a str, &'a [u8])], Option<&'a str>, Option<&'a str>);

/// East and west running. Fields drop in order: the daemons, then their namespaces.
pub struct Pair {
    pub east: Daemon,
    pub west: Daemon,
    pub ns_east: Netns,
    pub ns_west: Netns,
}

impl Pair {
    /// The daemon tag (and run directory name) of east or west in the pair `tag`.
    pub fn tag(tag: &str, east: bool) -> String {
        format!("{tag}{}", if east { "e" } else { "w" })
    }

    /// The run directory east's or west's files will be in, known before the start.
    pub fn dir(tag: &str, east: bool) -> PathBuf {
        Daemon::dir_for(&Self::tag(tag, east))
    }

    /// Make both namespaces, link them, and start west (the responder) then east, each
    /// with its configuration, extra files (see [`Daemon::start_with_files`]) and `args`.
    pub fn start(
        tag: &str,
        east: (&str, &[(&str, &[u8])]),
        west: (&str, &[(&str, &[u8])]),
        args: &[&str],
    ) -> Result<Pair, String> {
        let (te, tw) = (Self::tag(tag, true), Self::tag(tag, false));
        let ns_east = Netns::new(&te)?;
        let ns_west = Netns::new(&tw)?;
        Netns::link(
            &ns_east,
            &format!("{EAST_ADDR}/24"),
            &ns_west,
            &format!("{WEST_ADDR}/24"),
        )?;
        let west = Daemon::start_with_files(&ns_west, &tw, west.0, west.1, args)?;
        let east = Daemon::start_with_files(&ns_east, &te, east.0, east.1, args)?;
        Ok(Pair {
            east,
            west,
            ns_east,
            ns_west,
        })
    }

    /// East and west with RSA signatures: each has its private key (the PEM given here,
    /// written as `local.key`) and, as its peer's public key (`peer.pub`), the PEM given
    /// for it, which is normally the other side's.
    pub fn start_rsa(
        tag: &str,
        east: (&[u8], &[u8]),
        west: (&[u8], &[u8]),
        args: &[&str],
    ) -> Result<Pair, String> {
        let conf = |east: bool| {
            let dir = Self::dir(tag, east);
            gateway_conf(
                east,
                &Auth::Rsa {
                    private_key: dir.join("local.key"),
                    peer_public_key: dir.join("peer.pub"),
                },
            )
        };
        let (east_conf, west_conf) = (conf(true), conf(false));
        let east_files: &[(&str, &[u8])] = &[("local.key", east.0), ("peer.pub", east.1)];
        let west_files: &[(&str, &[u8])] = &[("local.key", west.0), ("peer.pub", west.1)];
        Self::start(
            tag,
            (&east_conf, east_files),
            (&west_conf, west_files),
            args,
        )
    }

    /// East and west with X.509 certificates: each side's files (`local.key`, `ca/...`,
    /// `certs/...`, `crls/...` under its run directory) and the bodies of its ID and Remote-ID
    /// sections (see [`Auth::X509`]).
    pub fn start_x509(
        tag: &str,
        east: X509Side<'_>,
        west: X509Side<'_>,
        args: &[&str],
    ) -> Result<Pair, String> {
        let conf = |east: bool, id: Option<&str>, remote_id: Option<&str>| {
            gateway_conf(
                east,
                &Auth::X509 {
                    dir: Self::dir(tag, east),
                    id: id.map(str::to_string),
                    remote_id: remote_id.map(str::to_string),
                },
            )
        };
        let east_conf = conf(true, east.1, east.2);
        let west_conf = conf(false, west.1, west.2);
        Self::start(tag, (&east_conf, east.0), (&west_conf, west.0), args)
    }

    /// Both logs, labelled, for assertion messages.
    pub fn logs(&self) -> String {
        format!(
            "--- east log:\n{}\n--- west log:\n{}",
            self.east.log_text(),
            self.west.log_text()
        )
    }

    /// Wait until each log holds `phase 1 established` and `phase 2 established` at least
    /// once; fail early if a daemon exits.
    pub fn wait_up(&mut self, timeout: Duration) -> Result<(), String> {
        let end = Instant::now() + timeout;
        loop {
            let up = [&self.east, &self.west]
                .iter()
                .all(|d| d.log_count(PHASE1_UP) >= 1 && d.log_count(PHASE2_UP) >= 1);
            if up {
                return Ok(());
            }
            for (name, d) in [("east", &mut self.east), ("west", &mut self.west)] {
                if let Some(st) = d.try_exit() {
                    // Let the log reader catch the last lines.
                    std::thread::sleep(Duration::from_millis(200));
                    return Err(format!("{name} exited ({st}) before both phases were up"));
                }
            }
            if Instant::now() >= end {
                return Err(format!(
                    "phase 1 and 2 not up on both sides within {timeout:?}"
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Start the east/west PSK pair from `etc/isakmpd.conf.example-{east,west}` with `args`
    /// and wait for both phases on both sides. Panics (with both logs) if that fails.
    pub fn psk_from_examples(tag: &str, args: &[&str]) -> Pair {
        let east = example_conf("east").expect("example configuration");
        let west = example_conf("west").expect("example configuration");
        let mut pair = Pair::start(tag, (&east, &[]), (&west, &[]), args).expect("start the pair");
        if let Err(e) = pair.wait_up(Duration::from_secs(20)) {
            panic!("{e}\n{}", pair.logs());
        }
        pair
    }
}
