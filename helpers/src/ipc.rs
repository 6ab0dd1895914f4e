//! Typed messages over Unix socketpairs, with descriptor passing.
//!
//! Frame: `u32` payload length (little endian), `u8` number of descriptors attached, then the
//! payload, a postcard encoding of the message. Descriptors travel as SCM_RIGHTS on the
//! `sendmsg` that carries the frame's first byte.
//!
//! Transport: `SOCK_STREAM` socketpairs. A stream has no per-message size limit tied to the
//! socket buffer (a `SOCK_SEQPACKET` record must fit in `SO_SNDBUF`, about 208 KiB by default,
//! which a secrets payload with several RSA keys or a configuration can approach), EOF still
//! tells us the peer died, and the length prefix gives the boundaries. Descriptors that arrive
//! ahead of their frame (a read may run into the next frame) wait in a queue, and the frame
//! header says how many belong to each frame, so they are never mismatched.
//!
//! The length is checked against the channel's maximum as soon as the header is in, before
//! any buffer grows for the payload; the receive buffer only ever holds bytes that actually
//! arrived. Every malformed input is an `IpcError`, never a panic.

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::VecDeque;
use std::fmt;
use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::Arc;

use nix::errno::Errno;
use nix::sys::socket::{
    recvmsg, sendmsg, socketpair as nix_socketpair, AddressFamily, ControlMessage,
    ControlMessageOwned, MsgFlags, SockFlag, SockType,
};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// Default largest payload a channel accepts (1 MiB).
pub const DEFAULT_MAX_FRAME: usize = 1 << 20;
/// Most descriptors one frame may carry.
pub const MAX_FDS: usize = 16;
/// Header: u32 length + u8 descriptor count.
pub const HEADER_LEN: usize = 5;
const READ_CHUNK: usize = 64 * 1024;

/// What can go wrong on a channel.
#[derive(Debug)]
pub enum IpcError {
    Io(io::Error),
    /// The peer closed the socket on a frame boundary.
    Closed,
    /// The peer closed the socket in the middle of a frame.
    Truncated {
        have: usize,
        need: usize,
    },
    /// A frame announced (or a sender offered) a payload over the channel's maximum.
    TooLarge {
        len: usize,
        max: usize,
    },
    /// A frame announced, or a sender offered, more descriptors than `MAX_FDS`.
    TooManyFds(usize),
    /// A frame announced descriptors that did not arrive (or the kernel dropped them).
    MissingFds {
        expected: usize,
        got: usize,
    },
    Encode(postcard::Error),
    Decode(postcard::Error),
}

impl fmt::Display for IpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IpcError::Io(e) => write!(f, "ipc: {e}"),
            IpcError::Closed => write!(f, "ipc: peer closed the channel"),
            IpcError::Truncated { have, need } => {
                write!(f, "ipc: peer closed mid-frame ({have} of {need} bytes)")
            }
            IpcError::TooLarge { len, max } => {
                write!(f, "ipc: frame of {len} bytes exceeds the maximum of {max}")
            }
            IpcError::TooManyFds(n) => write!(f, "ipc: {n} descriptors exceed {MAX_FDS}"),
            IpcError::MissingFds { expected, got } => {
                write!(
                    f,
                    "ipc: frame expects {expected} descriptors, {got} arrived"
                )
            }
            IpcError::Encode(e) => write!(f, "ipc: encode: {e}"),
            IpcError::Decode(e) => write!(f, "ipc: malformed message: {e}"),
        }
    }
}

impl std::error::Error for IpcError {}

impl From<io::Error> for IpcError {
    fn from(e: io::Error) -> Self {
        IpcError::Io(e)
    }
}

impl From<Errno> for IpcError {
    fn from(e: Errno) -> Self {
        IpcError::Io(e.into())
    }
}

/// A connected `SOCK_STREAM` Unix socketpair, both ends close-on-exec and blocking.
pub fn socketpair() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(nix_socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )?)
}

/// Arrange for `fd` to be descriptor `target` in the program `cmd` executes (how a child
/// or helper process receives its end of a socketpair). Keep `fd` open until `spawn` returns.
pub fn pass_fd_at_exec(cmd: &mut std::process::Command, fd: BorrowedFd<'_>, target: RawFd) {
    pass_fds_at_exec(cmd, &[(fd, target)])
}

/// As [`pass_fd_at_exec`] for several descriptors (at most four), which must be passed in
/// one call: each moves to its number without closing another's source.
pub fn pass_fds_at_exec(cmd: &mut std::process::Command, fds: &[(BorrowedFd<'_>, RawFd)]) {
    let raw: Vec<(RawFd, RawFd)> = fds.iter().map(|(f, t)| (f.as_raw_fd(), *t)).collect();
    crate::sys::inherit_fds_as(cmd, &raw)
}

/// Take the descriptor a parent passed with `pass_fd_at_exec`. Call once, at start-up, before
/// anything else in the process could own that number; a second call for the same number
/// returns `None`.
pub fn take_inherited_fd(target: RawFd) -> Option<OwnedFd> {
    static TAKEN: std::sync::Mutex<Vec<RawFd>> = std::sync::Mutex::new(Vec::new());
    let mut taken = TAKEN.lock().ok()?;
    if taken.contains(&target) {
        return None;
    }
    let fd = crate::sys::owned_from_inherited(target)?;
    taken.push(target);
    Some(fd)
}

/// Encode `msg` into one frame announcing `nfds` descriptors.
pub fn encode_frame<T: Serialize>(msg: &T, nfds: usize, max: usize) -> Result<Vec<u8>, IpcError> {
    if nfds > MAX_FDS {
        return Err(IpcError::TooManyFds(nfds));
    }
    let mut frame = vec![0u8; HEADER_LEN];
    frame = postcard::to_extend(msg, frame).map_err(IpcError::Encode)?;
    let len = frame.len() - HEADER_LEN;
    if len > max || len > u32::MAX as usize {
        return Err(IpcError::TooLarge { len, max });
    }
    frame[..4].copy_from_slice(&(len as u32).to_le_bytes());
    frame[4] = nfds as u8;
    Ok(frame)
}

/// Parse a frame header: (payload length, descriptor count), checked against `max`.
pub fn parse_header(h: &[u8; HEADER_LEN], max: usize) -> Result<(usize, usize), IpcError> {
    let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
    let nfds = h[4] as usize;
    if len > max {
        return Err(IpcError::TooLarge { len, max });
    }
    if nfds > MAX_FDS {
        return Err(IpcError::TooManyFds(nfds));
    }
    Ok((len, nfds))
}

/// Decode a payload; trailing bytes are an error.
pub fn decode_payload<T: DeserializeOwned>(payload: &[u8]) -> Result<T, IpcError> {
    let (msg, rest) = postcard::take_from_bytes(payload).map_err(IpcError::Decode)?;
    if !rest.is_empty() {
        return Err(IpcError::Decode(postcard::Error::DeserializeBadEncoding));
    }
    Ok(msg)
}

/// A frame's payload and the descriptors that came with it.
type RawFrame = (Vec<u8>, Vec<OwnedFd>);

/// Receive-side state shared by the blocking and async channels.
struct FrameReader {
    buf: Vec<u8>,
    fds: VecDeque<OwnedFd>,
    max: usize,
}

impl FrameReader {
    fn new(max: usize) -> Self {
        FrameReader {
            buf: Vec::new(),
            fds: VecDeque::new(),
            max,
        }
    }

    /// A complete frame from the buffer, if one is there.
    fn take(&mut self) -> Result<Option<RawFrame>, IpcError> {
        if self.buf.len() < HEADER_LEN {
            return Ok(None);
        }
        let mut h = [0u8; HEADER_LEN];
        h.copy_from_slice(&self.buf[..HEADER_LEN]);
        let (len, nfds) = parse_header(&h, self.max)?;
        if self.buf.len() < HEADER_LEN + len {
            return Ok(None);
        }
        if self.fds.len() < nfds {
            return Err(IpcError::MissingFds {
                expected: nfds,
                got: self.fds.len(),
            });
        }
        let payload = self.buf[HEADER_LEN..HEADER_LEN + len].to_vec();
        self.buf.drain(..HEADER_LEN + len);
        let fds = self.fds.drain(..nfds).collect();
        Ok(Some((payload, fds)))
    }

    /// How many bytes the frame being assembled still needs (for truncation reports).
    fn need(&self) -> usize {
        if self.buf.len() < HEADER_LEN {
            return HEADER_LEN;
        }
        let len = u32::from_le_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]);
        HEADER_LEN + len as usize
    }

    /// One recvmsg into the buffer. Ok(false) on EOF.
    fn fill(&mut self, fd: RawFd) -> Result<bool, IpcError> {
        let mut chunk = [0u8; READ_CHUNK];
        let mut cmsg = nix::cmsg_space!([RawFd; MAX_FDS]);
        let (n, ctrunc, received) = {
            let mut iov = [IoSliceMut::new(&mut chunk)];
            let msg = recvmsg::<()>(fd, &mut iov, Some(&mut cmsg), MsgFlags::MSG_CMSG_CLOEXEC)?;
            let mut received = Vec::new();
            for c in msg.cmsgs()? {
                if let ControlMessageOwned::ScmRights(fds) = c {
                    received.extend(fds.into_iter().map(crate::sys::owned_from_received));
                }
            }
            (
                msg.bytes,
                msg.flags.contains(MsgFlags::MSG_CTRUNC),
                received,
            )
        };
        self.fds.extend(received);
        if ctrunc {
            return Err(IpcError::TooManyFds(MAX_FDS + 1));
        }
        if n == 0 {
            if self.buf.is_empty() {
                return Err(IpcError::Closed);
            }
            return Err(IpcError::Truncated {
                have: self.buf.len(),
                need: self.need(),
            });
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(true)
    }
}

/// One sendmsg of `frame[off..]`, with the descriptors if `off == 0`.
fn send_some(fd: RawFd, frame: &[u8], off: usize, fds: &[RawFd]) -> nix::Result<usize> {
    let iov = [IoSlice::new(&frame[off..])];
    let rights = [ControlMessage::ScmRights(fds)];
    let cmsgs: &[ControlMessage] = if off == 0 && !fds.is_empty() {
        &rights
    } else {
        &[]
    };
    sendmsg::<()>(fd, &iov, cmsgs, MsgFlags::MSG_NOSIGNAL, None)
}

/// A blocking channel over one end of a socketpair.
pub struct Channel {
    fd: OwnedFd,
    reader: FrameReader,
}

impl Channel {
    pub fn new(fd: OwnedFd) -> Self {
        Self::with_max_frame(fd, DEFAULT_MAX_FRAME)
    }

    pub fn with_max_frame(fd: OwnedFd, max: usize) -> Self {
        Channel {
            fd,
            reader: FrameReader::new(max),
        }
    }

    pub fn send<T: Serialize>(&self, msg: &T) -> Result<(), IpcError> {
        self.send_with_fds(msg, &[])
    }

    pub fn send_with_fds<T: Serialize>(
        &self,
        msg: &T,
        fds: &[BorrowedFd<'_>],
    ) -> Result<(), IpcError> {
        let frame = encode_frame(msg, fds.len(), self.reader.max)?;
        let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
        let mut off = 0;
        while off < frame.len() {
            match send_some(self.fd.as_raw_fd(), &frame, off, &raw) {
                Ok(n) => off += n,
                Err(Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Receive one message; descriptors attached to it are closed.
    pub fn recv<T: DeserializeOwned>(&mut self) -> Result<T, IpcError> {
        Ok(self.recv_with_fds()?.0)
    }

    pub fn recv_with_fds<T: DeserializeOwned>(&mut self) -> Result<(T, Vec<OwnedFd>), IpcError> {
        loop {
            if let Some((payload, fds)) = self.reader.take()? {
                return Ok((decode_payload(&payload)?, fds));
            }
            match self.reader.fill(self.fd.as_raw_fd()) {
                Err(IpcError::Io(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
                Ok(_) => {}
            }
        }
    }

    pub fn into_fd(self) -> OwnedFd {
        self.fd
    }
}

impl AsFd for Channel {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// The sending half of an async channel (see `AsyncChannel::into_split`).
#[derive(Clone)]
pub struct AsyncSender {
    fd: Arc<AsyncFd<OwnedFd>>,
    max: usize,
}

/// The receiving half of an async channel.
pub struct AsyncReceiver {
    fd: Arc<AsyncFd<OwnedFd>>,
    reader: FrameReader,
}

/// A tokio channel over one end of a socketpair (the descriptor is made non-blocking).
pub struct AsyncChannel {
    tx: AsyncSender,
    rx: AsyncReceiver,
}

impl AsyncChannel {
    /// Must be called inside a tokio runtime with IO enabled.
    pub fn new(fd: OwnedFd) -> io::Result<Self> {
        Self::with_max_frame(fd, DEFAULT_MAX_FRAME)
    }

    pub fn with_max_frame(fd: OwnedFd, max: usize) -> io::Result<Self> {
        let flags = nix::fcntl::fcntl(fd.as_raw_fd(), nix::fcntl::FcntlArg::F_GETFL)?;
        let flags = nix::fcntl::OFlag::from_bits_truncate(flags) | nix::fcntl::OFlag::O_NONBLOCK;
        nix::fcntl::fcntl(fd.as_raw_fd(), nix::fcntl::FcntlArg::F_SETFL(flags))?;
        let fd = Arc::new(crate::sys::register_async(fd)?);
        Ok(AsyncChannel {
            tx: AsyncSender {
                fd: fd.clone(),
                max,
            },
            rx: AsyncReceiver {
                fd,
                reader: FrameReader::new(max),
            },
        })
    }

    pub fn into_split(self) -> (AsyncSender, AsyncReceiver) {
        (self.tx, self.rx)
    }

    pub async fn send<T: Serialize>(&self, msg: &T) -> Result<(), IpcError> {
        self.tx.send(msg).await
    }

    pub async fn send_with_fds<T: Serialize>(
        &self,
        msg: &T,
        fds: &[BorrowedFd<'_>],
    ) -> Result<(), IpcError> {
        self.tx.send_with_fds(msg, fds).await
    }

    pub async fn recv<T: DeserializeOwned>(&mut self) -> Result<T, IpcError> {
        self.rx.recv().await
    }

    pub async fn recv_with_fds<T: DeserializeOwned>(
        &mut self,
    ) -> Result<(T, Vec<OwnedFd>), IpcError> {
        self.rx.recv_with_fds().await
    }
}

impl AsyncSender {
    pub async fn send<T: Serialize>(&self, msg: &T) -> Result<(), IpcError> {
        self.send_with_fds(msg, &[]).await
    }

    pub async fn send_with_fds<T: Serialize>(
        &self,
        msg: &T,
        fds: &[BorrowedFd<'_>],
    ) -> Result<(), IpcError> {
        let frame = encode_frame(msg, fds.len(), self.max)?;
        let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
        self.send_raw(frame, raw).await
    }

    /// Encode without holding `msg` across an await (so a non-`Sync` message can be sent
    /// from a `Send` future): use with `send_frame`.
    pub fn encode<T: Serialize>(&self, msg: &T) -> Result<Vec<u8>, IpcError> {
        encode_frame(msg, 0, self.max)
    }

    /// Send a frame made by `encode` (no descriptors).
    pub async fn send_frame(&self, frame: Vec<u8>) -> Result<(), IpcError> {
        self.send_raw(frame, Vec::new()).await
    }

    async fn send_raw(&self, frame: Vec<u8>, raw: Vec<RawFd>) -> Result<(), IpcError> {
        let mut off = 0;
        while off < frame.len() {
            let r = self
                .fd
                .async_io(Interest::WRITABLE, |fd| {
                    send_some(fd.as_raw_fd(), &frame, off, &raw).map_err(io::Error::from)
                })
                .await;
            match r {
                Ok(n) => off += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

impl AsyncReceiver {
    /// Receive one message; descriptors attached to it are closed.
    /// Cancel-safe: bytes already read stay buffered for the next call.
    pub async fn recv<T: DeserializeOwned>(&mut self) -> Result<T, IpcError> {
        Ok(self.recv_with_fds().await?.0)
    }

    pub async fn recv_with_fds<T: DeserializeOwned>(
        &mut self,
    ) -> Result<(T, Vec<OwnedFd>), IpcError> {
        loop {
            if let Some((payload, fds)) = self.reader.take()? {
                return Ok((decode_payload(&payload)?, fds));
            }
            let mut guard = self.fd.readable().await?;
            let reader = &mut self.reader;
            match guard.try_io(|fd| match reader.fill(fd.as_raw_fd()) {
                Ok(_) => Ok(Ok(())),
                Err(IpcError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => Err(e),
                Err(IpcError::Io(e)) if e.kind() == io::ErrorKind::Interrupted => Ok(Ok(())),
                Err(e) => Ok(Err(e)),
            }) {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => return Err(e),
                Ok(Err(e)) => return Err(e.into()),
                Err(_would_block) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests;
