//! The parent's reading of isakmpd.conf: parsed and checked before anything starts, then
//! split by who may see what. The helpers get the pre-shared keys and private keys; the
//! child gets the configuration with every `Authentication` value blanked, and the peers'
//! public keys (public, so safe to give).

use crate::files;
use helpers::service::Secrets;
use ike::conf::Conf;
use ike::policy::{redact_secrets, secrets, Credentials, Policy};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// What the child needs to build its engine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildConfig {
    /// isakmpd.conf with the pre-shared keys removed, in isakmpd.conf syntax.
    pub conf: String,
    /// Peer section name -> RSA public key (DER SubjectPublicKeyInfo).
    pub public_keys: Vec<(String, Vec<u8>)>,
    /// This host's addresses, for NAT-D and as the source of initiated exchanges.
    pub local_addresses: Vec<IpAddr>,
}

/// The configuration as the parent holds it (Debug comes from the helpers' `Secrets`,
/// which prints names only).
#[derive(Debug)]
pub struct Loaded {
    /// The running configuration database (with secrets: the parent's alone).
    pub conf: Conf,
    pub policy: Policy,
    /// Connection name -> updown script (its `Updown=`, else `[General] Updown=`).
    pub updown: Vec<(String, String)>,
    pub secrets: Secrets,
    pub child: ChildConfig,
}

/// Read, parse and check `path`; every error names the file and what is wrong.
pub fn load(path: &Path) -> Result<Loaded, String> {
    let bytes = files::read_secret_file(path).map_err(|e| e.to_string())?;
    let text =
        String::from_utf8(bytes).map_err(|e| format!("{}: not UTF-8 text: {e}", path.display()))?;
    let conf = Conf::parse(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    from_conf(conf, path)
}

/// Check a configuration database (read from `path`, or changed by FIFO `C` commands) and
/// split it by who may see what.
pub fn from_conf(conf: Conf, path: &Path) -> Result<Loaded, String> {
    let policy = Policy::from_conf(&conf).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut rsa_keys = Vec::new();
    let mut public_keys = Vec::new();
    let dir = path.parent().unwrap_or(Path::new("/etc/isakmpd"));
    for peer in &policy.peers {
        let Credentials::RsaSig { secret, .. } = &peer.credentials else {
            continue;
        };
        if !rsa_keys
            .iter()
            .any(|(n, _): &(String, Vec<u8>)| n == secret)
        {
            rsa_keys.push((secret.clone(), private_key(Path::new(secret))?));
        }
        public_keys.push((
            peer.name.clone(),
            public_key(&conf, dir, &peer.name, peer.address.ip())?,
        ));
    }
    let updown = policy
        .connections
        .iter()
        .filter_map(|c| {
            let script = conf
                .get_str(&c.name, "Updown")
                .or_else(|| conf.get_str("General", "Updown"))?;
            Some((c.name.clone(), script.trim().to_string()))
        })
        .collect();
    let child = ChildConfig {
        conf: redact_secrets(&conf).dump(),
        public_keys,
        local_addresses: Vec::new(),
    };
    let secrets = Secrets {
        psks: secrets(&conf),
        rsa_keys,
    };
    Ok(Loaded {
        conf,
        policy,
        updown,
        secrets,
        child,
    })
}

/// Our RSA private key (PEM or DER), checked like the configuration: no group or other access.
fn private_key(path: &Path) -> Result<Vec<u8>, String> {
    let bytes = files::read_secret_file(path).map_err(|e| format!("private key: {e}"))?;
    let key = openssl::pkey::PKey::private_key_from_pem(&bytes)
        .or_else(|_| openssl::pkey::PKey::private_key_from_der(&bytes))
        .map_err(|_| format!("{}: not a PEM or DER private key", path.display()))?;
    if key.rsa().is_err() {
        return Err(format!("{}: not an RSA key", path.display()));
    }
    key.private_key_to_der()
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// A peer's raw RSA public key: the peer section's `Public-key` file, else isakmpd's
/// `pubkeys/ipv4/<address>` (or `ipv6`) beside the configuration file.
fn public_key(conf: &Conf, dir: &Path, peer: &str, address: IpAddr) -> Result<Vec<u8>, String> {
    let family = if address.is_ipv4() { "ipv4" } else { "ipv6" };
    let path = match conf.get_str(peer, "Public-key") {
        Some(p) => PathBuf::from(p.trim()),
        None => dir.join("pubkeys").join(family).join(address.to_string()),
    };
    let bytes = std::fs::read(&path).map_err(|e| {
        format!("peer {peer} uses RSA signatures but its public key {} cannot be read: {e} (set Public-key=)", path.display())
    })?;
    let key =
        ike::crypto::rsa_public_key(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    key.public_key_to_der()
        .map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn write(dir: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).expect("write");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).expect("chmod");
        p
    }

    fn tmp() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "isakmpd-config-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("mkdir");
        d
    }

    const PSK: &str = "[Phase 1]\n192.0.2.2=peer\n[peer]\nPhase=1\nAddress=192.0.2.2\nAuthentication=very-secret-key\n";

    #[test]
    fn secrets_go_to_the_helpers_and_not_to_the_child() {
        let d = tmp();
        let l = load(&write(&d, "isakmpd.conf", PSK, 0o600)).expect("load");
        assert_eq!(
            l.secrets.psks,
            vec![("peer".to_string(), b"very-secret-key".to_vec())]
        );
        assert!(!l.child.conf.contains("very-secret-key"));
        assert!(Conf::parse(&l.child.conf).is_ok());
    }

    #[test]
    fn errors_name_the_file_and_the_line() {
        let d = tmp();
        let p = write(
            &d,
            "bad.conf",
            "[General]\nthis line has no equals sign\n",
            0o600,
        );
        let e = load(&p).expect_err("refused");
        assert!(e.contains("bad.conf") && e.contains("line 2"), "{e}");
        let p = write(&d, "open.conf", PSK, 0o644);
        let e = load(&p).expect_err("refused");
        assert!(e.contains("0644"), "{e}");
    }

    #[test]
    fn rsa_peers_need_a_private_key_and_the_peers_public_key() {
        let d = tmp();
        let rsa = openssl::rsa::Rsa::generate(2048).expect("rsa");
        let key = String::from_utf8(rsa.private_key_to_pem().expect("pem")).expect("utf8");
        let public = String::from_utf8(rsa.public_key_to_pem().expect("pem")).expect("utf8");
        let keyp = write(&d, "local.key", &key, 0o600);
        let pubp = write(&d, "peer.pub", &public, 0o644);
        let conf = format!(
            "[Phase 1]\n192.0.2.2=peer\n[X509-Certificates]\nPrivate-key={}\n[peer]\nPhase=1\nAddress=192.0.2.2\nConfiguration=mm\nPublic-key={}\n[mm]\nEXCHANGE_TYPE=ID_PROT\nTransforms=AES-128-SHA-GRP14-RSA_SIG\n",
            keyp.display(),
            pubp.display()
        );
        let l = load(&write(&d, "isakmpd.conf", &conf, 0o600)).expect("load");
        assert_eq!(l.secrets.rsa_keys.len(), 1);
        assert_eq!(l.child.public_keys[0].0, "peer");
        assert!(!l.child.conf.contains("BEGIN"));
        // An open private key is refused like an open configuration.
        std::fs::set_permissions(&keyp, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        assert!(load(&d.join("isakmpd.conf"))
            .expect_err("refused")
            .contains("private key"));
    }
}
