//! The seccomp note pipe: the parent holds the read end; the child and every helper get the
//! write end as `helpers::seccomp::NOTE_FD`, where their SIGSYS handler writes which system
//! call their filter refused before the process dies. A compromised process can write
//! anything there, so lines are read bounded, parsed strictly, and logged rate-limited.

use crate::log;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Longest note line kept; a note is about 30 bytes.
const MAX_LINE: usize = 64;

/// One line from the pipe: a note, or what was there instead (escaped for the log).
#[derive(Debug, PartialEq, Eq)]
pub enum Note {
    Killed { pid: u32, syscall: i64 },
    Garbage(String),
}

pub fn parse(line: &[u8]) -> Note {
    match std::str::from_utf8(line)
        .ok()
        .and_then(helpers::seccomp::parse_note)
    {
        Some((pid, syscall)) => Note::Killed { pid, syscall },
        None => Note::Garbage(String::from_utf8_lossy(line).escape_debug().to_string()),
    }
}

/// The pipe: (read end, write end for the children). The write end does not block: a
/// dying process must never wait on it.
pub fn pipe() -> std::io::Result<(OwnedFd, Arc<OwnedFd>)> {
    use nix::fcntl::OFlag;
    use std::os::fd::AsRawFd;
    let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    let flags = nix::fcntl::fcntl(w.as_raw_fd(), nix::fcntl::FcntlArg::F_GETFL)?;
    let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
    nix::fcntl::fcntl(w.as_raw_fd(), nix::fcntl::FcntlArg::F_SETFL(flags))?;
    Ok((r, Arc::new(w)))
}

/// Read notes from `fd` and pass them on (a full channel drops them: they are logged
/// rate-limited anyway).
pub fn spawn_reader(fd: OwnedFd, tx: mpsc::Sender<Note>) {
    let pipe = match tokio::net::unix::pipe::Receiver::from_owned_fd(fd) {
        Ok(p) => p,
        Err(e) => return log::error(&format!("seccomp note pipe: {e}")),
    };
    tokio::spawn(async move {
        let mut buf = [0u8; 512];
        let mut line: Vec<u8> = Vec::with_capacity(MAX_LINE);
        let mut overlong = false;
        loop {
            if pipe.readable().await.is_err() {
                return;
            }
            let n = match pipe.try_read(&mut buf) {
                Ok(0) => return,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(_) => return,
            };
            for &b in &buf[..n] {
                if b == b'\n' {
                    let note = if overlong {
                        Note::Garbage(format!("a line of over {MAX_LINE} bytes"))
                    } else {
                        parse(&line)
                    };
                    let _ = tx.try_send(note);
                    line.clear();
                    overlong = false;
                } else if line.len() < MAX_LINE {
                    line.push(b);
                } else {
                    overlong = true;
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_are_parsed_strictly() {
        assert_eq!(
            parse(b"seccomp 1234 41"),
            Note::Killed {
                pid: 1234,
                syscall: 41
            }
        );
        assert!(matches!(parse(b"seccomp 1234 -1"), Note::Garbage(_)));
        assert!(matches!(parse(b"seccomp x 41"), Note::Garbage(_)));
        match parse(b"\x1b[31mfake log line") {
            Note::Garbage(g) => assert!(!g.contains('\x1b'), "{g}"),
            other => panic!("{other:?}"),
        }
    }
}
