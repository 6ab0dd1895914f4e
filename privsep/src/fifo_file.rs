//! The command FIFO (`-f`, default /var/run/isakmpd.fifo, `-` for standard input). The
//! parent makes it (mode 0600, only under /var/run) and opens it; the child reads and parses
//! what is written, because what arrives there is as untrusted as a packet.

use crate::cmdline::Fifo;
use crate::files;
use nix::sys::stat::Mode;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};

/// Make and open the FIFO. It is opened read-write so that it always has a writer: a
/// reader of a FIFO with none would see end-of-file again and again between commands.
pub fn open_fifo(which: &Fifo) -> Result<OwnedFd, String> {
    let path = match which {
        Fifo::Stdin => {
            return std::io::stdin()
                .as_fd()
                .try_clone_to_owned()
                .map_err(|e| format!("FIFO on standard input: {e}"));
        }
        Fifo::Path(p) => files::run_path(p).map_err(|e| format!("FIFO: {e}"))?,
    };
    if let Ok(md) = std::fs::symlink_metadata(&path) {
        if !md.file_type().is_fifo() {
            return Err(format!("FIFO {}: exists and is not a FIFO", path.display()));
        }
        // Gone already is as good as removed.
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(format!("FIFO {}: {e}", path.display()));
            }
            _ => {}
        }
    }
    nix::unistd::mkfifo(&path, Mode::S_IRUSR | Mode::S_IWUSR)
        .map_err(|e| format!("FIFO {}: {e}", path.display()))?;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
        .open(&path)
        .map_err(|e| format!("FIFO {}: {e}", path.display()))?;
    Ok(OwnedFd::from(file))
}
