//! The files the parent opens: the configuration (and secrets) file, refused when group or
//! others may access it; and run files (pid, report, pcap), allowed only under /var/run.

use nix::sys::signal::kill;
use nix::unistd::Pid;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

pub const RUN_DIR: &str = "/var/run";
/// Exit status when another isakmpd is running (usage and other errors exit 1).
pub const EXIT_ALREADY_RUNNING: i32 = 2;

#[derive(Debug)]
pub enum FileError {
    Io(PathBuf, std::io::Error),
    /// Group or others may access the file.
    Mode(PathBuf, u32),
    Owner(PathBuf, u32),
    NotRegular(PathBuf),
    NotUnderRunDir(PathBuf),
    AlreadyRunning(PathBuf, i32),
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileError::Io(p, e) => write!(f, "{}: {e}", p.display()),
            FileError::Mode(p, m) => {
                let what = if m & 0o044 != 0 {
                    "readable"
                } else if m & 0o022 != 0 {
                    "writable"
                } else {
                    "accessible"
                };
                write!(
                    f,
                    "{}: mode {:04o}, must not be {what} by group or others",
                    p.display(),
                    m & 0o7777
                )
            }
            FileError::Owner(p, uid) => write!(
                f,
                "{}: owned by uid {uid}, must be owned by root",
                p.display()
            ),
            FileError::NotRegular(p) => write!(f, "{}: not a regular file", p.display()),
            FileError::NotUnderRunDir(p) => {
                write!(f, "{}: only paths under {RUN_DIR} are allowed", p.display())
            }
            FileError::AlreadyRunning(p, pid) => {
                write!(f, "already running as pid {pid} (pid file {})", p.display())
            }
        }
    }
}

impl std::error::Error for FileError {}

impl FileError {
    /// The process exit status this error calls for.
    pub fn exit_status(&self) -> i32 {
        match self {
            FileError::AlreadyRunning(..) => EXIT_ALREADY_RUNNING,
            _ => 1,
        }
    }
}

/// Open a configuration or secrets file and check it on the open descriptor (no race between
/// check and read): a regular file, owned by root (or the user running the daemon), with no
/// permission bits for group or others. As isakmpd, the file is refused otherwise.
pub fn open_secret_file(path: &Path) -> Result<File, FileError> {
    let f = File::open(path).map_err(|e| FileError::Io(path.into(), e))?;
    let md = f.metadata().map_err(|e| FileError::Io(path.into(), e))?;
    if !md.is_file() {
        return Err(FileError::NotRegular(path.into()));
    }
    let euid = nix::unistd::geteuid().as_raw();
    if md.uid() != 0 && md.uid() != euid {
        return Err(FileError::Owner(path.into(), md.uid()));
    }
    if md.mode() & 0o077 != 0 {
        return Err(FileError::Mode(path.into(), md.mode()));
    }
    Ok(f)
}

/// Read a configuration or secrets file after `open_secret_file`'s checks, into a buffer
/// wiped when dropped (the file holds pre-shared or private keys).
pub fn read_secret_file(path: &Path) -> Result<Zeroizing<Vec<u8>>, FileError> {
    let mut f = open_secret_file(path)?;
    let io = |e: std::io::Error| FileError::Io(path.into(), e);
    // Sized from the file (one byte more, to see EOF) so that reading does not reallocate:
    // a reallocation would free a copy of the keys unwiped.
    let size = usize::try_from(f.metadata().map_err(io)?.len()).unwrap_or(usize::MAX);
    let mut buf = Zeroizing::new(vec![0u8; size.saturating_add(1).min(1 << 30)]);
    let mut len = 0;
    loop {
        if len == buf.len() {
            // The file grew while we read it: move to a larger buffer, wiping this one.
            let mut grown = Zeroizing::new(vec![0u8; 2 * buf.len()]);
            grown[..len].copy_from_slice(&buf[..len]);
            buf = grown;
        }
        match f.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io(e)),
        }
    }
    // Only zeros were past `len`.
    buf.truncate(len);
    Ok(buf)
}

/// Resolve `path` (its directory canonicalized, symbolic links followed) and accept it only
/// if it lies under /var/run (itself canonicalized: /run on most Linux systems).
pub fn run_path(path: &Path) -> Result<PathBuf, FileError> {
    run_path_under(path, Path::new(RUN_DIR))
}

fn run_path_under(path: &Path, run_dir: &Path) -> Result<PathBuf, FileError> {
    let refuse = || FileError::NotUnderRunDir(path.into());
    let name = path.file_name().ok_or_else(refuse)?;
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .ok_or_else(refuse)?;
    let parent = parent
        .canonicalize()
        .map_err(|e| FileError::Io(path.into(), e))?;
    let run = run_dir
        .canonicalize()
        .map_err(|e| FileError::Io(run_dir.into(), e))?;
    if !parent.starts_with(&run) {
        return Err(refuse());
    }
    Ok(parent.join(name))
}

/// Is `pid` a live process that looks like `name` (its comm or argv[0])?
pub fn is_live_process_named(pid: i32, name: &str) -> bool {
    if pid <= 0 {
        return false;
    }
    match kill(Pid::from_raw(pid), None) {
        Ok(()) | Err(nix::errno::Errno::EPERM) => {}
        Err(_) => return false,
    }
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    // comm is cut at 15 bytes.
    let short: String = name.chars().take(15).collect();
    if comm.trim_end() == short {
        return true;
    }
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let argv0 = cmdline.split(|&b| b == 0).next().unwrap_or_default();
    let argv0 = String::from_utf8_lossy(argv0);
    Path::new(argv0.as_ref())
        .file_name()
        .and_then(|f| f.to_str())
        == Some(name)
}

/// A pid file under /var/run, removed when dropped (clean exit).
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
    pid: u32,
}

impl PidFile {
    /// Refuse if the pid file names a live isakmpd; a stale one (dead process, reused pid,
    /// garbage) is fine. Does not write: use before daemonizing to report on the terminal.
    pub fn check(path: &Path) -> Result<PathBuf, FileError> {
        Self::check_named(path, "isakmpd")
    }

    /// Check, then write our pid (after daemonizing, so it is the daemon's pid).
    pub fn create(path: &Path) -> Result<PidFile, FileError> {
        Self::create_named(path, "isakmpd")
    }

    pub fn check_named(path: &Path, name: &str) -> Result<PathBuf, FileError> {
        let path = run_path(path)?;
        let mut old = String::new();
        match OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
        {
            Ok(mut f) => {
                // Unreadable contents count as stale.
                let _ = f.read_to_string(&mut old);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(path),
            // A symbolic link where the pid file should be: not ours, replaced.
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Ok(path),
            Err(e) => return Err(FileError::Io(path, e)),
        }
        if let Ok(pid) = old.trim().parse::<i32>() {
            if pid as u32 != std::process::id() && is_live_process_named(pid, name) {
                return Err(FileError::AlreadyRunning(path, pid));
            }
        }
        Ok(path)
    }

    pub fn create_named(path: &Path, name: &str) -> Result<PidFile, FileError> {
        let path = Self::check_named(path, name)?;
        // Replace a stale file; never follow a link planted in its place.
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(FileError::Io(path, e)),
        }
        let pid = std::process::id();
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(|e| FileError::Io(path.clone(), e))?;
        writeln!(f, "{pid}").map_err(|e| FileError::Io(path.clone(), e))?;
        Ok(PidFile { path, pid })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        // Only our own: a process forked from us must not remove it.
        if std::process::id() == self.pid {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests;
