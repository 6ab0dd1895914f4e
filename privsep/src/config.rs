//! The parent's reading of isakmpd.conf: parsed and checked before anything starts, then
//! split by who may see what. The helpers get the pre-shared keys and private keys; the
//! child gets the configuration with every `Authentication` value blanked, the peers'
//! public keys, and the `[X509-Certificates]` CA certificates, CRLs and certificates (all
//! public, so safe to give; the child verifies peers' certificates with them, as isakmpd's
//! unprivileged process does).

use crate::files;
use helpers::service::Secrets;
use ike::conf::Conf;
use ike::crypto::Secret;
use ike::policy::{redact_secrets, secrets, Credentials, Policy};
use ike::policy::{ConnectionName, PeerName};
use ike::x509::Material;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// What the child needs to build its engine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildConfig {
    /// isakmpd.conf with the pre-shared keys removed, in isakmpd.conf syntax.
    pub conf: String,
    /// Peer section name -> RSA public key (DER SubjectPublicKeyInfo).
    pub public_keys: Vec<(PeerName, Vec<u8>)>,
    /// This host's addresses, for NAT-D and as the source of initiated exchanges.
    pub local_addresses: Vec<IpAddr>,
    /// `CA-directory`, `CRL-directory` and `Cert-directory`, as DER.
    #[serde(default)]
    pub x509: Material,
    /// `-T`: no NAT traversal with any peer, whatever the configuration says.
    #[serde(default)]
    pub no_natt: bool,
}

/// The configuration as the parent holds it (Debug comes from the helpers' `Secrets`,
/// which prints names only).
#[derive(Debug)]
pub struct Loaded {
    /// The running configuration database (with secrets: the parent's alone).
    pub conf: Conf,
    pub policy: Policy,
    /// Connection name -> updown script (its `Updown=`, else `[General] Updown=`).
    pub updown: Vec<(ConnectionName, String)>,
    pub secrets: Secrets,
    pub child: ChildConfig,
}

/// Why a configuration (or a file it names) is refused; every one names the file.
#[derive(Debug)]
pub enum ConfigError {
    /// The configuration file itself: unreadable, or open to group or others.
    File(files::FileError),
    NotUtf8(PathBuf, std::str::Utf8Error),
    Parse(PathBuf, ike::conf::ConfError),
    Policy(PathBuf, ike::policy::PolicyError),
    /// Our private key file: unreadable, or open to group or others.
    PrivateKeyFile(files::FileError),
    NotAPrivateKey(PathBuf),
    NotRsa(PathBuf),
    /// OpenSSL could not re-encode a key read from the file.
    Encoding(PathBuf, openssl::error::ErrorStack),
    /// A peer that signs has neither a readable public key nor CAs to check it by.
    PublicKeyUnreadable {
        peer: String,
        path: PathBuf,
        error: std::io::Error,
        ca_dir: String,
    },
    PublicKey(PathBuf, ike::crypto::CryptoError),
    Io(PathBuf, std::io::Error),
    /// A certificate file's contents; the reason is ike::x509's text.
    Certificate(PathBuf, ike::x509::ReadError),
    NotACertificate(PathBuf, ike::x509::ReadError),
    NotACrl(PathBuf, ike::x509::ReadError),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::File(e) => write!(f, "{e}"),
            ConfigError::NotUtf8(p, e) => write!(f, "{}: not UTF-8 text: {e}", p.display()),
            ConfigError::Parse(p, e) => write!(f, "{}: {e}", p.display()),
            ConfigError::Policy(p, e) => write!(f, "{}: {e}", p.display()),
            ConfigError::PrivateKeyFile(e) => write!(f, "private key: {e}"),
            ConfigError::NotAPrivateKey(p) => {
                write!(f, "{}: not a PEM or DER private key", p.display())
            }
            ConfigError::NotRsa(p) => write!(f, "{}: not an RSA key", p.display()),
            ConfigError::Encoding(p, e) => write!(f, "{}: {e}", p.display()),
            ConfigError::PublicKeyUnreadable {
                peer,
                path,
                error,
                ca_dir,
            } => write!(
                f,
                "peer {peer} uses RSA signatures but its public key {} cannot be read: {error} (set Public-key=, or put CA certificates in CA-directory {ca_dir} to check the peer's certificate)",
                path.display()
            ),
            ConfigError::PublicKey(p, e) => write!(f, "{}: {e}", p.display()),
            ConfigError::Io(p, e) => write!(f, "{}: {e}", p.display()),
            ConfigError::Certificate(p, e) => write!(f, "{}: {e}", p.display()),
            ConfigError::NotACertificate(p, e) => {
                write!(f, "{}: not a certificate: {e}", p.display())
            }
            ConfigError::NotACrl(p, e) => write!(f, "{}: not a CRL: {e}", p.display()),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Read, parse and check `path`; every error names the file and what is wrong.
pub fn read(path: &Path) -> Result<Loaded, ConfigError> {
    // The text borrows the wiped-on-drop buffer: no unwiped copy of the keys is made.
    let bytes = files::read_secret_file(path).map_err(ConfigError::File)?;
    let text = std::str::from_utf8(&bytes).map_err(|e| ConfigError::NotUtf8(path.into(), e))?;
    let conf = Conf::parse(text).map_err(|e| ConfigError::Parse(path.into(), e))?;
    split(conf, path)
}

/// Check a configuration database (read from `path`, or changed by FIFO `C` commands) and
/// split it by who may see what.
pub fn split(conf: Conf, path: &Path) -> Result<Loaded, ConfigError> {
    let mut policy = Policy::from_conf(&conf).map_err(|e| ConfigError::Policy(path.into(), e))?;
    let mut rsa_keys = Vec::new();
    let mut public_keys = Vec::new();
    let dir = path.parent().unwrap_or(Path::new("/etc/isakmpd"));
    let rsa_peers: Vec<_> = policy
        .peers
        .iter()
        .filter_map(|p| match &p.credentials {
            Credentials::RsaSig { secret, .. } => Some((p, secret)),
            Credentials::PreShared { .. } => None,
        })
        .collect();
    let mut own_public_keys = Vec::new();
    for (_, secret) in &rsa_peers {
        if !rsa_keys
            .iter()
            .any(|(n, _): &(String, Secret)| n == *secret)
        {
            let (private, public) = private_key(Path::new(secret))?;
            rsa_keys.push(((*secret).clone(), private));
            own_public_keys.push(public);
        }
    }
    // Certificates are read only when some peer uses signatures, as the private key is.
    let x509 = if rsa_peers.is_empty() {
        Material::default()
    } else {
        x509_material(&conf, &own_public_keys)?
    };
    for (peer, _) in &rsa_peers {
        if let Some(key) = public_key(&conf, dir, &peer.name, peer.address.ip(), &x509)? {
            public_keys.push((peer.name.clone(), key));
        }
    }
    policy.x509 = x509.clone();
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
        x509,
        no_natt: false,
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

/// Our RSA private key (PEM or DER), checked like the configuration: no group or other
/// access; as DER (wiped when dropped), with its public key (DER SubjectPublicKeyInfo).
fn private_key(path: &Path) -> Result<(Secret, Vec<u8>), ConfigError> {
    let bytes = files::read_secret_file(path).map_err(ConfigError::PrivateKeyFile)?;
    let key = openssl::pkey::PKey::private_key_from_pem(&bytes)
        .or_else(|_| openssl::pkey::PKey::private_key_from_der(&bytes))
        .map_err(|_| ConfigError::NotAPrivateKey(path.into()))?;
    if key.rsa().is_err() {
        return Err(ConfigError::NotRsa(path.into()));
    }
    let private = key
        .private_key_to_der()
        .map(Secret::new)
        .map_err(|e| ConfigError::Encoding(path.into(), e))?;
    let public = key
        .public_key_to_der()
        .map_err(|e| ConfigError::Encoding(path.into(), e))?;
    Ok((private, public))
}

/// A peer's raw RSA public key: the peer section's `Public-key` file, else isakmpd's
/// `pubkeys/ipv4/<address>` (or `ipv6`) beside the configuration file if it exists. Without
/// either the peer must show a certificate (`None`), which needs CAs to check it against.
fn public_key(
    conf: &Conf,
    dir: &Path,
    peer: &str,
    address: IpAddr,
    x509: &Material,
) -> Result<Option<Vec<u8>>, ConfigError> {
    let family = if address.is_ipv4() { "ipv4" } else { "ipv6" };
    let path = match conf.get_str(peer, "Public-key") {
        Some(p) => PathBuf::from(p.trim()),
        None => {
            let p = dir.join("pubkeys").join(family).join(address.to_string());
            if !p.exists() && x509.has_cas() {
                return Ok(None);
            }
            p
        }
    };
    let bytes = std::fs::read(&path).map_err(|error| ConfigError::PublicKeyUnreadable {
        peer: peer.to_string(),
        path: path.clone(),
        error,
        ca_dir: conf
            .get_str("X509-Certificates", "CA-directory")
            .unwrap_or_default()
            .trim()
            .to_string(),
    })?;
    let key =
        ike::crypto::rsa_public_key(&bytes).map_err(|e| ConfigError::PublicKey(path.clone(), e))?;
    key.public_key_to_der()
        .map(Some)
        .map_err(|e| ConfigError::Encoding(path, e))
}

/// `[X509-Certificates]`: the CA certificates, the CRLs, and the certificates of
/// `Cert-directory`, split into ours (the public key of one of our private keys) and the
/// others. A directory that does not exist holds nothing; a file in one that is not a
/// certificate (or CRL) is an error naming it.
fn x509_material(conf: &Conf, own_public_keys: &[Vec<u8>]) -> Result<Material, ConfigError> {
    let dir = |tag: &str| {
        conf.get_str("X509-Certificates", tag)
            .map(|d| PathBuf::from(d.trim()))
    };
    let mut m = Material::default();
    for (_, bytes) in directory_files(dir("CA-directory"))? {
        m.cas.extend(bytes);
    }
    for (path, bytes) in directory_files(dir("Cert-directory"))? {
        for der in bytes {
            let key = ike::x509::public_key_of(&der)
                .map_err(|e| ConfigError::Certificate(path.clone(), e))?;
            if own_public_keys.contains(&key) {
                m.own.push(der);
            } else {
                m.others.push(der);
            }
        }
    }
    if let Some(d) = dir("CRL-directory") {
        for path in directory_entries(&d)? {
            let bytes = std::fs::read(&path).map_err(|e| ConfigError::Io(path.clone(), e))?;
            let crl = ike::x509::crl_from_file(&bytes)
                .map_err(|e| ConfigError::NotACrl(path.clone(), e))?;
            if !m.crls.contains(&crl) {
                m.crls.push(crl);
            }
        }
    }
    for v in [&mut m.cas, &mut m.own, &mut m.others] {
        let mut seen = Vec::new();
        v.retain(|c| {
            let new = !seen.contains(c);
            seen.push(c.clone());
            new
        });
    }
    Ok(m)
}

/// A file and the certificates in it, as DER.
type CertFile = (PathBuf, Vec<Vec<u8>>);

/// The certificates in each file of `dir`.
fn directory_files(dir: Option<PathBuf>) -> Result<Vec<CertFile>, ConfigError> {
    let Some(dir) = dir else {
        return Ok(Vec::new());
    };
    directory_entries(&dir)?
        .into_iter()
        .map(|path| {
            let bytes = std::fs::read(&path).map_err(|e| ConfigError::Io(path.clone(), e))?;
            let certs = ike::x509::certs_from_file(&bytes)
                .map_err(|e| ConfigError::NotACertificate(path.clone(), e))?;
            Ok((path, certs))
        })
        .collect()
}

/// The files of `dir` (not hidden, not directories), sorted; none if it does not exist.
fn directory_entries(dir: &Path) -> Result<Vec<PathBuf>, ConfigError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(ConfigError::Io(dir.into(), e)),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| ConfigError::Io(dir.into(), e))?;
        let path = entry.path();
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        if !hidden && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
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
        let l = read(&write(&d, "isakmpd.conf", PSK, 0o600)).expect("load");
        assert_eq!(
            l.secrets.psks,
            vec![("peer".to_string(), Secret::from_slice(b"very-secret-key"))]
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
        let e = read(&p).expect_err("refused");
        assert!(
            e.to_string().contains("bad.conf") && e.to_string().contains("line 2"),
            "{e}"
        );
        let p = write(&d, "open.conf", PSK, 0o644);
        let e = read(&p).expect_err("refused");
        assert!(e.to_string().contains("0644"), "{e}");
        assert!(matches!(e, ConfigError::File(_)), "{e:?}");
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
        let l = read(&write(&d, "isakmpd.conf", &conf, 0o600)).expect("load");
        assert_eq!(l.secrets.rsa_keys.len(), 1);
        assert_eq!(l.child.public_keys[0].0, "peer");
        assert!(!l.child.conf.contains("BEGIN"));
        // An open private key is refused like an open configuration.
        std::fs::set_permissions(&keyp, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        assert!(read(&d.join("isakmpd.conf"))
            .expect_err("refused")
            .to_string()
            .contains("private key"));
    }

    #[test]
    fn certificates_are_read_and_split_into_ours_and_others() {
        use ike_test_support::pki::{Ca, San};
        let d = tmp();
        let mut ca = Ca::new(&[("O", "Test"), ("CN", "Test CA")]).expect("ca");
        let ours = openssl::rsa::Rsa::generate(2048).expect("rsa");
        let ours = openssl::pkey::PKey::from_rsa(ours).expect("pkey");
        let theirs = ike_test_support::pki::rsa_key(2048).expect("key");
        let my_cert = ca
            .issue(
                &[("O", "Test"), ("CN", "me")],
                &[San::Dns("me.test".into())],
                &ours,
            )
            .expect("cert");
        let their_cert = ca
            .issue(&[("O", "Test"), ("CN", "them")], &[], &theirs)
            .expect("cert");
        let crl = ca.crl(&[&their_cert]).expect("crl");
        for sub in ["ca", "certs", "crls"] {
            std::fs::create_dir_all(d.join(sub)).expect("mkdir");
        }
        let pem =
            |c: &openssl::x509::X509| String::from_utf8(c.to_pem().expect("pem")).expect("utf8");
        write(&d.join("ca"), "ca.crt", &pem(&ca.cert), 0o644);
        // The same CA twice (a hash-named link, say) counts once; hidden files are skipped.
        write(&d.join("ca"), "5a3b2c1d.0", &pem(&ca.cert), 0o644);
        write(&d.join("ca"), ".README", "not a certificate", 0o644);
        write(&d.join("certs"), "me.crt", &pem(&my_cert), 0o644);
        write(&d.join("certs"), "them.crt", &pem(&their_cert), 0o644);
        std::fs::write(d.join("crls").join("ca.crl"), &crl).expect("write");
        let key = String::from_utf8(ours.private_key_to_pem_pkcs8().expect("pem")).expect("utf8");
        let keyp = write(&d, "local.key", &key, 0o600);
        let conf = format!(
            "[Phase 1]\n192.0.2.2=peer\n[X509-Certificates]\nPrivate-key={}\nCA-directory={}\nCert-directory={}\nCRL-directory={}\n[peer]\nPhase=1\nAddress=192.0.2.2\nConfiguration=mm\nRemote-ID=them\n[them]\nID-type=DER_ASN1_DN\nName=/O=Test/CN=them\n[mm]\nEXCHANGE_TYPE=ID_PROT\nTransforms=AES-128-SHA-GRP14-RSA_SIG\n",
            keyp.display(),
            d.join("ca").display(),
            d.join("certs").display(),
            d.join("crls").display(),
        );
        let confp = write(&d, "isakmpd.conf", &conf, 0o600);
        let l = read(&confp).expect("load");
        let m = &l.child.x509;
        assert_eq!(m.cas, vec![ca.cert.to_der().expect("der")]);
        assert_eq!(m.own, vec![my_cert.to_der().expect("der")]);
        assert_eq!(m.others, vec![their_cert.to_der().expect("der")]);
        assert_eq!(m.crls, vec![crl]);
        // No raw key for the peer: it proves its key with a certificate.
        assert!(l.child.public_keys.is_empty());
        assert!(!l.child.conf.contains("BEGIN"));
        // The child's policy carries the material.
        let p = crate::driver::policy(&l.child).expect("policy");
        assert_eq!(&p.x509, m);
        // A file that is not a certificate is named.
        write(&d.join("ca"), "junk.pem", "hello", 0o644);
        let e = read(&confp).expect_err("refused");
        assert!(
            e.to_string().contains("junk.pem") && e.to_string().contains("not a certificate"),
            "{e}"
        );
        std::fs::remove_file(d.join("ca").join("junk.pem")).expect("rm");
        // Without CAs and without a raw key, the peer cannot be checked: say how to fix it.
        std::fs::remove_file(d.join("ca").join("ca.crt")).expect("rm");
        std::fs::remove_file(d.join("ca").join("5a3b2c1d.0")).expect("rm");
        let e = read(&confp).expect_err("refused");
        assert!(
            e.to_string().contains("Public-key=") && e.to_string().contains("CA-directory"),
            "{e}"
        );
    }
}
