//! The command FIFO (`-f`, default /var/run/isakmpd.fifo, `-` for standard input): root's
//! channel. The parent makes it (root-owned, mode 0600, only under /var/run), opens it,
//! reads it and parses it with the `fifo` crate, which never panics on what it is given,
//! however long or malformed; the child never sees it.

use crate::cmdline::Fifo;
use crate::files;
use crate::log;
use nix::sys::stat::Mode;
use std::fmt;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::mpsc;

/// Why the command FIFO could not be made or opened; each says which FIFO.
#[derive(Debug)]
pub enum FifoError {
    Stdin(std::io::Error),
    /// Not under /var/run (or its directory could not be resolved).
    Path(files::FileError),
    /// Something else is there, and is not ours to remove.
    NotAFifo(PathBuf),
    Io(PathBuf, std::io::Error),
    Make(PathBuf, nix::errno::Errno),
}

impl fmt::Display for FifoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FifoError::Stdin(e) => write!(f, "FIFO on standard input: {e}"),
            FifoError::Path(e) => write!(f, "FIFO: {e}"),
            FifoError::NotAFifo(p) => write!(f, "FIFO {}: exists and is not a FIFO", p.display()),
            FifoError::Io(p, e) => write!(f, "FIFO {}: {e}", p.display()),
            FifoError::Make(p, e) => write!(f, "FIFO {}: {e}", p.display()),
        }
    }
}

impl std::error::Error for FifoError {}

/// Make and open the FIFO. It is opened read-write so that it always has a writer: a
/// reader of a FIFO with none would see end-of-file again and again between commands.
pub fn open(which: &Fifo) -> Result<OwnedFd, FifoError> {
    let path = match which {
        Fifo::Stdin => {
            return std::io::stdin()
                .as_fd()
                .try_clone_to_owned()
                .map_err(FifoError::Stdin);
        }
        Fifo::Path(p) => files::run_path(p).map_err(FifoError::Path)?,
    };
    if let Ok(md) = std::fs::symlink_metadata(&path) {
        if !md.file_type().is_fifo() {
            return Err(FifoError::NotAFifo(path));
        }
        // Gone already is as good as removed.
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(FifoError::Io(path, e));
            }
            _ => {}
        }
    }
    nix::unistd::mkfifo(&path, Mode::S_IRUSR | Mode::S_IWUSR)
        .map_err(|e| FifoError::Make(path.clone(), e))?;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
        .open(&path)
        .map_err(|e| FifoError::Io(path.clone(), e))?;
    Ok(OwnedFd::from(file))
}

/// Read the FIFO (opened non-blocking and read-write, so it never reports end of file)
/// and pass what arrives to the main loop. A slow main loop makes this task wait, and the
/// kernel's pipe buffer then makes writers wait: a flood costs nothing else.
pub fn spawn_reader(fd: OwnedFd, tx: mpsc::Sender<Vec<u8>>) {
    let file = std::fs::File::from(fd);
    let pipe = match tokio::net::unix::pipe::Receiver::from_file_unchecked(file) {
        Ok(p) => p,
        Err(e) => return log::error(&format!("FIFO: {e}")),
    };
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            if pipe.readable().await.is_err() {
                return;
            }
            match pipe.try_read(&mut buf) {
                // Standard input (`-f -`) at its end: nothing more will come.
                Ok(0) => tokio::time::sleep(Duration::from_millis(50)).await,
                Ok(n) => {
                    if tx.send(buf[..n].to_vec()).await.is_err() {
                        return;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => {
                    log::error(&format!("FIFO read: {e}"));
                    return;
                }
            }
        }
    });
}
