//! The packet capture file of `-L`, `-l file` and FIFO `p on[=path]`: chosen only by the
//! parent's flags and its FIFO, only under /var/run, opened without following a symbolic
//! link, created mode 0600 (it holds decrypted IKE messages), and refused unless it is a
//! regular file of ours with a single link (a hard link planted there would make us
//! overwrite another file). It stops at [`MAX_BYTES`], with a log line.

use crate::pcap::PcapWriter;
use std::fs::File;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Largest capture file: at about 1 KB a message, some 100,000 messages.
pub const MAX_BYTES: u64 = 100 << 20;

/// A writer that refuses (whole) writes once `cap` bytes would be passed.
#[derive(Debug)]
pub struct Capped<W: Write> {
    inner: W,
    written: u64,
    cap: u64,
}

impl<W: Write> Write for Capped<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.written + buf.len() as u64 > self.cap {
            return Err(io::Error::other(format!(
                "size limit of {} bytes reached",
                self.cap
            )));
        }
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Why a capture file was refused or could not be opened; each says the path.
#[derive(Debug)]
pub enum CaptureError {
    /// Not under /var/run (or its directory could not be resolved).
    Path(crate::files::FileError),
    SymbolicLink(PathBuf),
    Io(PathBuf, io::Error),
    NotRegular(PathBuf),
    NotOurs {
        path: PathBuf,
        uid: u32,
    },
    /// More than one link: a hard link planted there would make us overwrite another file.
    Links {
        path: PathBuf,
        links: u64,
    },
}

impl std::fmt::Display for CaptureError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CaptureError::Path(e) => write!(f, "{e}"),
            CaptureError::SymbolicLink(p) => {
                write!(f, "{}: a symbolic link, not followed", p.display())
            }
            CaptureError::Io(p, e) => write!(f, "{}: {e}", p.display()),
            CaptureError::NotRegular(p) => write!(f, "{}: not a regular file", p.display()),
            CaptureError::NotOurs { path, uid } => {
                write!(f, "{}: owned by uid {uid}, not by us", path.display())
            }
            CaptureError::Links { path, links } => {
                write!(f, "{}: has {links} links", path.display())
            }
        }
    }
}

impl std::error::Error for CaptureError {}

/// The capture being written.
#[derive(Debug)]
pub struct Capture {
    writer: PcapWriter<Capped<File>>,
    path: PathBuf,
}

impl Capture {
    /// Open (create or truncate) `path` for a capture of at most `cap` bytes.
    pub fn open(path: &Path, natt_port: u16, cap: u64) -> Result<Capture, CaptureError> {
        let path = crate::files::run_path(path).map_err(CaptureError::Path)?;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .mode(0o600)
            // Not through a link; not blocking on a FIFO someone put there.
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&path)
            .map_err(|e| match e.raw_os_error() {
                Some(libc::ELOOP) => CaptureError::SymbolicLink(path.clone()),
                _ => CaptureError::Io(path.clone(), e),
            })?;
        let md = file
            .metadata()
            .map_err(|e| CaptureError::Io(path.clone(), e))?;
        let euid = nix::unistd::geteuid().as_raw();
        if !md.is_file() {
            return Err(CaptureError::NotRegular(path));
        }
        if md.uid() != euid {
            return Err(CaptureError::NotOurs {
                path,
                uid: md.uid(),
            });
        }
        if md.nlink() != 1 {
            return Err(CaptureError::Links {
                path,
                links: md.nlink(),
            });
        }
        // Checked on the open descriptor: now it is safe to empty it and narrow its mode.
        file.set_len(0)
            .and_then(|()| file.set_permissions(std::fs::Permissions::from_mode(0o600)))
            .map_err(|e| CaptureError::Io(path.clone(), e))?;
        let capped = Capped {
            inner: file,
            written: 0,
            cap,
        };
        let mut writer = PcapWriter::new(capped).map_err(|e| CaptureError::Io(path.clone(), e))?;
        writer.set_natt_port(natt_port);
        Ok(Capture { writer, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Add one message; an error (the size limit, a full disk) ends the capture.
    pub fn record(&mut self, from: SocketAddr, to: SocketAddr, bytes: &[u8]) -> io::Result<()> {
        self.writer.record(SystemTime::now(), from, to, bytes)
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.writer.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(tag: &str) -> PathBuf {
        let d = PathBuf::from(format!(
            "/var/run/isakmpd-capture-test-{}-{tag}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("mkdir under /var/run");
        d
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("addr")
    }

    #[test]
    fn a_link_is_not_followed_and_its_target_is_untouched() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("SKIPPED a_link_is_not_followed: /var/run needs root");
            return;
        }
        let d = dir("link");
        let target = d.join("precious");
        std::fs::write(&target, b"keep me").expect("write");
        let link = d.join("isakmpd.pcap");
        std::os::unix::fs::symlink(&target, &link).expect("symlink");
        let e = Capture::open(&link, 4500, MAX_BYTES).expect_err("refused");
        assert!(e.to_string().contains("symbolic link"), "{e}");
        // A hard link: same refusal, for another reason.
        let hard = d.join("hard.pcap");
        std::fs::hard_link(&target, &hard).expect("link");
        let e = Capture::open(&hard, 4500, MAX_BYTES).expect_err("refused");
        assert!(e.to_string().contains("2 links"), "{e}");
        assert_eq!(std::fs::read(&target).expect("read"), b"keep me");
        // Outside /var/run: refused before anything is opened.
        assert!(Capture::open(Path::new("/tmp/x.pcap"), 4500, MAX_BYTES)
            .expect_err("refused")
            .to_string()
            .contains("/var/run"));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn created_0600_and_stopped_at_the_cap() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("SKIPPED created_0600_and_stopped_at_the_cap: /var/run needs root");
            return;
        }
        let d = dir("cap");
        let p = d.join("c.pcap");
        // An existing file with a wide mode is emptied and narrowed.
        std::fs::write(&p, vec![7u8; 5000]).expect("write");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let mut c = Capture::open(&p, 4500, 1000).expect("open");
        let md = std::fs::metadata(&p).expect("stat");
        assert_eq!(md.permissions().mode() & 0o777, 0o600);
        let msg = vec![0u8; 200];
        let mut written = 0;
        while c
            .record(addr("192.0.2.1:500"), addr("192.0.2.2:500"), &msg)
            .is_ok()
        {
            written += 1;
            assert!(written < 100, "the cap never stopped the capture");
        }
        c.flush().expect("flush");
        let len = std::fs::metadata(&p).expect("stat").len();
        assert!(len <= 1000 && len > 0, "{len}");
        assert!(written >= 2, "{written}");
        let _ = std::fs::remove_dir_all(&d);
    }
}
