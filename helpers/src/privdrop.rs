//! Dropping privileges for good (DESIGN.md section 1).
//!
//! Order, each step needing what the previous ones still have:
//! 1. resolve the user (`_isakmpd`, else `nobody`) while /etc/passwd is still visible;
//! 2. create the chroot directory if missing (root-owned, 0755) and refuse one that is not a
//!    root-owned directory writable by nobody else;
//! 3. `chroot` + `chdir("/")` (needs CAP_SYS_CHROOT, so before the uid changes);
//! 4. empty the capability bounding set (needs CAP_SETPCAP, so before the uid changes);
//! 5. `setgroups([gid])`, `setresgid(gid)`, `setresuid(uid)`;
//! 6. clear the effective, permitted, inheritable and ambient capability sets;
//! 7. `PR_SET_NO_NEW_PRIVS`;
//! 8. check the result (ids, capability sets) and fail if any step did not take.
//!
//! A seccomp allow-list is not installed yet: it comes once the child's and helpers'
//! syscall sets are known (the engine and crypto are not wired in yet).
//!
//! Capability sets and no_new_privs are per thread on Linux: call `drop_privileges` while the
//! process is single-threaded (before a tokio runtime or any other thread starts), or only
//! the calling thread is fully confined.

use caps::CapSet;
use nix::sys::stat::Mode;
use nix::unistd::{chdir, chroot, getresgid, getresuid, setgroups, setresgid, setresuid};
use nix::unistd::{Gid, Uid, User};
use std::fmt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

/// The default unprivileged user, as OpenBSD.
pub const DEFAULT_USER: &str = "_isakmpd";
/// Used when `_isakmpd` does not exist (Linux distributions rarely have it).
pub const FALLBACK_USER: &str = "nobody";
/// The default chroot directory.
pub const DEFAULT_CHROOT: &str = "/var/empty";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropConfig {
    /// `None`: `_isakmpd`, else `nobody`.
    pub user: Option<String>,
    pub chroot: PathBuf,
}

impl Default for DropConfig {
    fn default() -> Self {
        DropConfig {
            user: None,
            chroot: PathBuf::from(DEFAULT_CHROOT),
        }
    }
}

/// Who we became.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

#[derive(Debug)]
pub enum PrivDropError {
    NoUser(String),
    RootUser(String),
    ChrootDir(PathBuf, String),
    Sys(&'static str, nix::Error),
    Caps(&'static str, String),
    Verify(String),
}

impl fmt::Display for PrivDropError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PrivDropError::NoUser(u) => write!(f, "privdrop: no such user: {u}"),
            PrivDropError::RootUser(u) => write!(f, "privdrop: user {u} has uid or gid 0"),
            PrivDropError::ChrootDir(p, why) => {
                write!(f, "privdrop: chroot directory {}: {why}", p.display())
            }
            PrivDropError::Sys(call, e) => write!(f, "privdrop: {call}: {e}"),
            PrivDropError::Caps(what, e) => write!(f, "privdrop: {what}: {e}"),
            PrivDropError::Verify(why) => write!(f, "privdrop: did not take: {why}"),
        }
    }
}

impl std::error::Error for PrivDropError {}

/// Look up the user to become: the configured one, or `_isakmpd`, else `nobody`.
pub fn resolve_user(user: Option<&str>) -> Result<Credentials, PrivDropError> {
    let candidates: Vec<&str> = match user {
        Some(u) => vec![u],
        None => vec![DEFAULT_USER, FALLBACK_USER],
    };
    for name in &candidates {
        match User::from_name(name) {
            Ok(Some(u)) => {
                if u.uid.is_root() || u.gid.as_raw() == 0 {
                    return Err(PrivDropError::RootUser(name.to_string()));
                }
                return Ok(Credentials {
                    name: name.to_string(),
                    uid: u.uid.as_raw(),
                    gid: u.gid.as_raw(),
                });
            }
            Ok(None) => continue,
            Err(e) => return Err(PrivDropError::Sys("getpwnam", e)),
        }
    }
    Err(PrivDropError::NoUser(candidates.join(" or ")))
}

/// Create `path` root-owned 0755 if missing; refuse it unless it is a directory owned by
/// root that group and others cannot write.
pub fn ensure_chroot_dir(path: &Path) -> Result<(), PrivDropError> {
    let bad = |why: String| PrivDropError::ChrootDir(path.to_path_buf(), why);
    if !path.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(path)
            .map_err(|e| bad(format!("cannot create: {e}")))?;
        // The umask may have narrowed the mode; 0755 is what we want.
        nix::sys::stat::fchmodat(
            None,
            path,
            Mode::from_bits_truncate(0o755),
            nix::sys::stat::FchmodatFlags::FollowSymlink,
        )
        .map_err(|e| bad(format!("chmod: {e}")))?;
    }
    let md = std::fs::metadata(path).map_err(|e| bad(e.to_string()))?;
    if !md.is_dir() {
        return Err(bad("not a directory".into()));
    }
    if md.uid() != 0 {
        return Err(bad(format!("owned by uid {}, must be root", md.uid())));
    }
    if md.mode() & 0o022 != 0 {
        return Err(bad(format!(
            "mode {:04o}, must not be writable by group or others",
            md.mode() & 0o7777
        )));
    }
    Ok(())
}

/// Drop every privilege for good: see the module documentation for the steps.
pub fn drop_privileges(cfg: &DropConfig) -> Result<Credentials, PrivDropError> {
    let creds = resolve_user(cfg.user.as_deref())?;
    ensure_chroot_dir(&cfg.chroot)?;
    let sys = PrivDropError::Sys;
    let uid = Uid::from_raw(creds.uid);
    let gid = Gid::from_raw(creds.gid);

    chroot(&cfg.chroot).map_err(|e| sys("chroot", e))?;
    chdir("/").map_err(|e| sys("chdir", e))?;

    // The bounding set can only shrink while we hold CAP_SETPCAP.
    caps::clear(None, CapSet::Bounding)
        .map_err(|e| PrivDropError::Caps("clear bounding set", e.to_string()))?;

    setgroups(&[gid]).map_err(|e| sys("setgroups", e))?;
    setresgid(gid, gid, gid).map_err(|e| sys("setresgid", e))?;
    setresuid(uid, uid, uid).map_err(|e| sys("setresuid", e))?;

    for (set, what) in [
        (CapSet::Effective, "clear effective set"),
        (CapSet::Permitted, "clear permitted set"),
        (CapSet::Inheritable, "clear inheritable set"),
        (CapSet::Ambient, "clear ambient set"),
    ] {
        caps::clear(None, set).map_err(|e| PrivDropError::Caps(what, e.to_string()))?;
    }
    nix::sys::prctl::set_no_new_privs().map_err(|e| sys("prctl(PR_SET_NO_NEW_PRIVS)", e))?;

    verify(&creds)?;
    Ok(creds)
}

fn verify(creds: &Credentials) -> Result<(), PrivDropError> {
    let r = getresuid().map_err(|e| PrivDropError::Sys("getresuid", e))?;
    let g = getresgid().map_err(|e| PrivDropError::Sys("getresgid", e))?;
    for id in [r.real, r.effective, r.saved] {
        if id.as_raw() != creds.uid {
            return Err(PrivDropError::Verify(format!("uid {id} remains")));
        }
    }
    for id in [g.real, g.effective, g.saved] {
        if id.as_raw() != creds.gid {
            return Err(PrivDropError::Verify(format!("gid {id} remains")));
        }
    }
    // Getting root back must fail.
    if setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0)).is_ok() {
        return Err(PrivDropError::Verify("setresuid(0) succeeded".into()));
    }
    for set in [
        CapSet::Effective,
        CapSet::Permitted,
        CapSet::Inheritable,
        CapSet::Ambient,
    ] {
        let held = caps::read(None, set)
            .map_err(|e| PrivDropError::Caps("read capabilities", e.to_string()))?;
        if !held.is_empty() {
            return Err(PrivDropError::Verify(format!("{set:?} set still {held:?}")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
