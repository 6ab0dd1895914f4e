//! Dropping privileges for good (DESIGN.md section 1).
//!
//! Order, each step needing what the previous ones still have:
//! 1. resolve the user (the child: `_isakmpd`, else `nobody`; a helper: see
//!    `DropConfig::helper`) while /etc/passwd is still visible;
//! 2. create the chroot directory if missing (root-owned, 0755) and refuse one that is not a
//!    root-owned directory writable by nobody else;
//! 3. `chroot` + `chdir("/")` (needs CAP_SYS_CHROOT, so before the uid changes);
//! 4. empty the capability bounding set (needs CAP_SETPCAP, so before the uid changes);
//! 5. `setgroups([gid])`, `setresgid(gid)`, `setresuid(uid)`;
//! 6. clear the effective, permitted, inheritable and ambient capability sets;
//! 7. `PR_SET_NO_NEW_PRIVS`;
//! 8. no core files and not dumpable (`disable_core_dumps`): setresuid resets the dumpable
//!    flag, so this comes after it;
//! 9. check the result (ids, capability sets, dumpable, core limit) and fail if any step did
//!    not take.
//!
//! The seccomp allow-list (`crate::seccomp::install`) comes after all this, installed by the
//! caller once it has set up what the list does not allow (for the child, its runtime).
//!
//! The helpers run under a user of their own, not the child's: a process can signal, ptrace
//! and read /proc/<pid>/mem of another only under the same uid, and the helpers hold the
//! long-term secrets that the child, which parses hostile input, must never reach.
//!
//! Capability sets and no_new_privs are per thread on Linux: call `drop_privileges` while the
//! process is single-threaded (before a tokio runtime or any other thread starts), or only
//! the calling thread is fully confined.

use caps::CapSet;
use nix::sys::stat::Mode;
use nix::unistd::{chdir, chroot, getresgid, getresuid, setgroups, setresgid, setresuid};
use nix::unistd::{Gid, Group, Uid, User};
use std::fmt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

/// The default unprivileged user, as OpenBSD.
pub const DEFAULT_USER: &str = "_isakmpd";
/// Used when `_isakmpd` does not exist (Linux distributions rarely have it).
pub const FALLBACK_USER: &str = "nobody";
/// The helpers' own user (etc/isakmpd.sysusers.conf creates it).
pub const HELPER_USER: &str = "_isakmpd-helper";
/// The helpers' uid and gid when `_isakmpd-helper` does not exist, used only if no passwd
/// and no group entry names that number (65534 is `nobody` on most systems; 65533 is
/// conventionally unused).
pub const HELPER_FALLBACK_ID: u32 = 65533;
/// The default chroot directory.
pub const DEFAULT_CHROOT: &str = "/var/empty";

/// Whom a process becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    /// A user from the passwd database. `None` is the child's default: `_isakmpd`, else
    /// `nobody`.
    Named(Option<String>),
    /// A bare uid and gid that no passwd entry names (the helpers' fallback).
    Id(u32, u32),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropConfig {
    pub who: Who,
    pub chroot: PathBuf,
    /// Set for the helpers: refuse to become the child's identity (`resolve_user(None)`).
    pub distinct_from_child: bool,
}

/// The child's: `_isakmpd`, else `nobody`, in `/var/empty`.
impl Default for DropConfig {
    fn default() -> Self {
        DropConfig {
            who: Who::Named(None),
            chroot: PathBuf::from(DEFAULT_CHROOT),
            distinct_from_child: false,
        }
    }
}

impl DropConfig {
    /// A helper's: `_isakmpd-helper` if it exists, else uid/gid `HELPER_FALLBACK_ID` if
    /// nothing owns that number and it is not the child's; otherwise an error asking for the
    /// user to be created. Reads the passwd and group databases, so call it before chroot.
    pub fn helper() -> Result<DropConfig, PrivDropError> {
        Ok(DropConfig {
            who: helper_identity()?,
            chroot: PathBuf::from(DEFAULT_CHROOT),
            distinct_from_child: true,
        })
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
    /// No `_isakmpd-helper` user and the numeric fallback is unusable (the reason).
    NoHelperUser(String),
    /// The helper identity named is the child's (name, uid).
    SameAsChild(String, u32),
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
            PrivDropError::NoHelperUser(why) => write!(
                f,
                "privdrop: no user for the helpers: create the system user {HELPER_USER} \
                 (e.g. systemd-sysusers with etc/isakmpd.sysusers.conf); {why}"
            ),
            PrivDropError::SameAsChild(u, uid) => write!(
                f,
                "privdrop: helper user {u} has uid {uid}, the same as the child's; the \
                 helpers need a user of their own ({HELPER_USER})"
            ),
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

/// Who a helper becomes, given what the databases say: whether `_isakmpd-helper` exists,
/// whether a passwd or group entry names `HELPER_FALLBACK_ID`, and the child's uid.
fn choose_helper(
    named_exists: bool,
    fallback_taken: bool,
    child_uid: Option<u32>,
) -> Result<Who, PrivDropError> {
    if named_exists {
        return Ok(Who::Named(Some(HELPER_USER.to_string())));
    }
    if fallback_taken {
        return Err(PrivDropError::NoHelperUser(format!(
            "the fallback id {HELPER_FALLBACK_ID} has a passwd or group entry"
        )));
    }
    if child_uid == Some(HELPER_FALLBACK_ID) {
        return Err(PrivDropError::NoHelperUser(format!(
            "the fallback id {HELPER_FALLBACK_ID} is the child's"
        )));
    }
    Ok(Who::Id(HELPER_FALLBACK_ID, HELPER_FALLBACK_ID))
}

/// The helpers' identity from the system's databases (see `DropConfig::helper`).
pub fn helper_identity() -> Result<Who, PrivDropError> {
    let sys = PrivDropError::Sys;
    let named = User::from_name(HELPER_USER).map_err(|e| sys("getpwnam", e))?;
    let id = HELPER_FALLBACK_ID;
    let taken = User::from_uid(Uid::from_raw(id))
        .map_err(|e| sys("getpwuid", e))?
        .is_some()
        || Group::from_gid(Gid::from_raw(id))
            .map_err(|e| sys("getgrgid", e))?
            .is_some();
    let child_uid = match resolve_user(None) {
        Ok(c) => Some(c.uid),
        // No child identity at all: nothing for the helper to collide with.
        Err(PrivDropError::NoUser(_)) => None,
        Err(e) => return Err(e),
    };
    choose_helper(named.is_some(), taken, child_uid)
}

/// Whom `cfg` makes us: `who` looked up, never uid or gid 0, and for a helper never the
/// child's uid.
pub fn resolve(cfg: &DropConfig) -> Result<Credentials, PrivDropError> {
    let creds = match &cfg.who {
        Who::Named(name) => resolve_user(name.as_deref())?,
        Who::Id(uid, gid) => {
            if *uid == 0 || *gid == 0 {
                return Err(PrivDropError::RootUser(format!("{uid}:{gid}")));
            }
            Credentials {
                name: uid.to_string(),
                uid: *uid,
                gid: *gid,
            }
        }
    };
    if cfg.distinct_from_child {
        match resolve_user(None) {
            Ok(child) if child.uid == creds.uid => {
                return Err(PrivDropError::SameAsChild(creds.name, creds.uid));
            }
            Ok(_) | Err(PrivDropError::NoUser(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(creds)
}

/// No core files and not dumpable: a core or a ptrace attach would carry keys out, and a
/// non-dumpable process's /proc files belong to root. The root parent calls this at start;
/// `drop_privileges` calls it again, since changing uid resets the dumpable flag.
pub fn disable_core_dumps() -> Result<(), PrivDropError> {
    use nix::sys::resource::{setrlimit, Resource};
    let sys = PrivDropError::Sys;
    setrlimit(Resource::RLIMIT_CORE, 0, 0).map_err(|e| sys("setrlimit(RLIMIT_CORE)", e))?;
    nix::sys::prctl::set_dumpable(false).map_err(|e| sys("prctl(PR_SET_DUMPABLE)", e))?;
    verify_no_core_dumps()
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
    let creds = resolve(cfg)?;
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

    disable_core_dumps()?;

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
    verify_no_core_dumps()
}

fn verify_no_core_dumps() -> Result<(), PrivDropError> {
    use nix::sys::resource::{getrlimit, Resource};
    let dumpable = nix::sys::prctl::get_dumpable()
        .map_err(|e| PrivDropError::Sys("prctl(PR_GET_DUMPABLE)", e))?;
    if dumpable {
        return Err(PrivDropError::Verify("still dumpable".into()));
    }
    let core = getrlimit(Resource::RLIMIT_CORE)
        .map_err(|e| PrivDropError::Sys("getrlimit(RLIMIT_CORE)", e))?;
    if core != (0, 0) {
        return Err(PrivDropError::Verify(format!("core limit {core:?}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
