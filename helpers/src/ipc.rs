//! Typed messages over Unix socketpairs, with descriptor passing.
//!
//! Frame: `u32` payload length (little endian), `u8` number of descriptors attached, then the
//! payload, a postcard encoding of the message. Descriptors travel as SCM_RIGHTS on the
//! `sendmsg` that carries the frame's first byte.
//!
//! Descriptor accounting is strict, because a peer that could make us hold descriptors it
//! passed (a compromised child) could pin sockets or files in our process. As descriptors
//! arrive and after each frame is taken, those queued must be no more than the buffered
//! frame headers announce; a surplus closes every queued descriptor, wipes the buffered
//! bytes (refusing the frame they came with) and breaks the channel: this receive and every
//! later one fail with `IpcError::UnexpectedFds`. A channel may also limit the descriptors
//! one frame may bring (`with_limits`; 0: none, any that arrives is closed at once).
//!
//! Frames carry key material (DH private values, g^xy, SKEYID, and the secrets the parent
//! hands the helpers), so every buffer that held frame bytes is wiped once done with: the
//! encoded frame after sending, the receive buffer as frames are consumed (and any
//! allocation it outgrows), and the stack chunk each read lands in. Decoding reads the
//! payload in place, so no further copy exists.
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

use zeroize::{Zeroize, Zeroizing};

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
/// Linux's limit of descriptors in one SCM_RIGHTS message (SCM_MAX_FD). Control space for
/// that many means the kernel never truncates a batch: a truncated one could not be read
/// back (nix refuses to walk it), and what it did install would stay open unseen.
const SCM_MAX_FD: usize = 253;
/// A receive buffer emptied with more capacity than this is given back (wiped).
const KEEP_CAPACITY: usize = 4 * READ_CHUNK;

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
    /// A frame announced, or a sender offered, more descriptors than allowed (`MAX_FDS`,
    /// or the channel's limit on what the peer may pass).
    TooManyFds {
        got: usize,
        max: usize,
    },
    /// The peer passed `got` descriptors no buffered frame announces (or more than the
    /// channel allows at once). Every queued descriptor was closed and the buffered frames
    /// refused; the channel delivers nothing more.
    UnexpectedFds {
        got: usize,
    },
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
            IpcError::TooManyFds { got, max } => {
                write!(
                    f,
                    "ipc: {got} descriptors in one frame exceed the limit of {max}"
                )
            }
            IpcError::UnexpectedFds { got } => write!(
                f,
                "ipc: peer passed {got} descriptors no frame announced; closed every queued descriptor and refused the channel"
            ),
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

/// Encode `msg` into one frame announcing `nfds` descriptors. The frame is wiped when
/// dropped.
pub fn encode_frame<T: Serialize>(
    msg: &T,
    nfds: usize,
    max: usize,
) -> Result<Zeroizing<Vec<u8>>, IpcError> {
    if nfds > MAX_FDS {
        return Err(IpcError::TooManyFds {
            got: nfds,
            max: MAX_FDS,
        });
    }
    let len = postcard::serialize_with_flavor(msg, postcard::ser_flavors::Size::default())
        .map_err(IpcError::Encode)?;
    if len > max || len > u32::MAX as usize {
        return Err(IpcError::TooLarge { len, max });
    }
    // Sized exactly, so encoding never reallocates (a reallocation would free a copy of
    // the message unwiped).
    let mut frame = Zeroizing::new(vec![0u8; HEADER_LEN + len]);
    postcard::to_slice(msg, &mut frame[HEADER_LEN..]).map_err(IpcError::Encode)?;
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
        return Err(IpcError::TooManyFds {
            got: nfds,
            max: MAX_FDS,
        });
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

/// Receive-side state shared by the blocking and async channels.
///
/// `buf[start..]` holds the bytes received and not yet consumed; everything before `start`
/// has been wiped. Nothing but zeros is ever left in an allocation the buffer gives up.
struct FrameReader {
    buf: Zeroizing<Vec<u8>>,
    start: usize,
    fds: VecDeque<OwnedFd>,
    max: usize,
    max_fds: usize,
    /// Set once the peer passed descriptors no frame announced (how many): which frame
    /// they belong to can no longer be told, so the channel delivers nothing more.
    broken: Option<usize>,
}

impl FrameReader {
    fn new(max: usize, max_fds: usize) -> Self {
        FrameReader {
            buf: Zeroizing::new(Vec::new()),
            start: 0,
            fds: VecDeque::new(),
            max,
            max_fds: max_fds.min(MAX_FDS),
            broken: None,
        }
    }

    /// The header at `pos` of the buffer, checked, or `None` if not all of it is there.
    fn header(&self, pos: usize) -> Option<Result<(usize, usize), IpcError>> {
        let h: [u8; HEADER_LEN] = self
            .buf
            .get(pos..pos.checked_add(HEADER_LEN)?)?
            .try_into()
            .ok()?;
        Some(parse_header(&h, self.max).and_then(|(len, nfds)| {
            if nfds > self.max_fds {
                Err(IpcError::TooManyFds {
                    got: nfds,
                    max: self.max_fds,
                })
            } else {
                Ok((len, nfds))
            }
        }))
    }

    /// The next complete frame's message and descriptors, if one is buffered. The frame's
    /// bytes are wiped once decoded, whether or not they decode.
    fn next<T: DeserializeOwned>(&mut self) -> Result<Option<(T, Vec<OwnedFd>)>, IpcError> {
        if let Some(got) = self.broken {
            return Err(IpcError::UnexpectedFds { got });
        }
        let Some(header) = self.header(self.start) else {
            return Ok(None);
        };
        let (len, nfds) = header?;
        let body = self.start + HEADER_LEN;
        if self.buf.len() - body < len {
            return Ok(None);
        }
        if self.fds.len() < nfds {
            return Err(IpcError::MissingFds {
                expected: nfds,
                got: self.fds.len(),
            });
        }
        let msg = decode_payload(&self.buf[body..body + len]);
        self.consume(HEADER_LEN + len);
        let fds: Vec<OwnedFd> = self.fds.drain(..nfds).collect();
        // A surplus left now came with this frame or one before it: refused, and its
        // descriptors closed (dropped) with the rest.
        self.check_announced()?;
        Ok(Some((msg?, fds)))
    }

    /// Wipe and drop the first `n` unconsumed bytes.
    fn consume(&mut self, n: usize) {
        let end = self.start + n;
        self.buf[self.start..end].zeroize();
        self.start = end;
        if self.start == self.buf.len() {
            // All zeros now: nothing to copy or wipe again.
            self.buf.clear();
            self.start = 0;
            if self.buf.capacity() > KEEP_CAPACITY {
                // Give back what a large frame (the secrets, a configuration) grew; the
                // old allocation is wiped as it drops.
                self.buf = Zeroizing::new(Vec::new());
            }
        }
    }

    /// Make room for `extra` more bytes: move the unconsumed bytes to the front (wiping the
    /// stale copies behind them), then grow into a new allocation if still short, wiping the
    /// old one.
    fn reserve(&mut self, extra: usize) {
        if self.start > 0 {
            let len = self.buf.len();
            self.buf.copy_within(self.start.., 0);
            let live = len - self.start;
            self.buf[live..].zeroize();
            self.buf.truncate(live);
            self.start = 0;
        }
        let need = self.buf.len() + extra;
        if self.buf.capacity() < need {
            let mut grown = Vec::with_capacity(need.max(2 * self.buf.capacity()));
            grown.extend_from_slice(&self.buf);
            self.buf = Zeroizing::new(grown);
        }
    }

    /// Whether the queued descriptors are no more than the buffered frame headers announce
    /// (a header not yet complete may have brought up to `max_fds`). If there are more,
    /// `break_channel`.
    fn check_announced(&mut self) -> Result<(), IpcError> {
        if self.fds.is_empty() {
            return Ok(());
        }
        let mut announced = 0usize;
        let mut pos = self.start;
        while pos < self.buf.len() {
            match self.header(pos) {
                None => {
                    announced += self.max_fds;
                    break;
                }
                Some(Ok((len, nfds))) => {
                    announced += nfds;
                    pos = pos.saturating_add(HEADER_LEN + len);
                }
                // That frame is refused when its turn comes; nothing after it counts.
                Some(Err(_)) => break,
            }
        }
        match self.fds.len().checked_sub(announced) {
            None | Some(0) => Ok(()),
            Some(got) => Err(self.break_channel(got)),
        }
    }

    /// The peer passed `got` descriptors no frame announced. Descriptors are matched to
    /// frames only by order, so none queued can be trusted to belong to the frame that
    /// announces it: close them all, wipe and drop every buffered byte (the frame they came
    /// with is refused with the rest), and deliver nothing more on this channel.
    fn break_channel(&mut self, got: usize) -> IpcError {
        self.fds.clear();
        let len = self.buf.len();
        self.consume(len - self.start);
        self.broken = Some(got);
        IpcError::UnexpectedFds { got }
    }

    /// How many bytes the frame being assembled still needs (for truncation reports).
    fn need(&self) -> usize {
        match self.buf.get(self.start..self.start + HEADER_LEN) {
            Some(h) => HEADER_LEN + u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize,
            None => HEADER_LEN,
        }
    }

    /// One recvmsg into the buffer. Ok(false) on EOF.
    fn fill(&mut self, fd: RawFd) -> Result<bool, IpcError> {
        if let Some(got) = self.broken {
            return Err(IpcError::UnexpectedFds { got });
        }
        // Wiped (the part written) as soon as copied into the buffer.
        let mut chunk = [0u8; READ_CHUNK];
        let mut cmsg = nix::cmsg_space!([RawFd; SCM_MAX_FD]);
        let (n, received) = {
            let mut iov = [IoSliceMut::new(&mut chunk)];
            let msg = recvmsg::<()>(fd, &mut iov, Some(&mut cmsg), MsgFlags::MSG_CMSG_CLOEXEC)?;
            // Cannot fail for lack of space (see SCM_MAX_FD); if it did, what the kernel
            // installed could not be found to close.
            let received = msg.cmsgs().map(|cmsgs| {
                cmsgs
                    .filter_map(|c| match c {
                        ControlMessageOwned::ScmRights(raw) => Some(raw),
                        _ => None,
                    })
                    .flatten()
                    .map(crate::sys::owned_from_received)
                    .collect::<Vec<_>>()
            });
            (msg.bytes, received)
        };
        if n > 0 {
            self.reserve(n);
            self.buf.extend_from_slice(&chunk[..n]);
            chunk[..n].zeroize();
        }
        let received = received?;
        if received.len() > self.max_fds {
            // More than any one frame may bring: closed (dropped) here, never queued.
            let got = received.len();
            drop(received);
            return Err(self.break_channel(got));
        }
        self.fds.extend(received);
        // Checked as they arrive, so that none waits for a frame that may never come.
        self.check_announced()?;
        if n == 0 {
            if self.buf.len() == self.start {
                return Err(IpcError::Closed);
            }
            return Err(IpcError::Truncated {
                have: self.buf.len() - self.start,
                need: self.need(),
            });
        }
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
        Self::with_limits(fd, max, MAX_FDS)
    }

    /// A channel whose frames (both ways) are at most `max_frame` bytes and whose peer may
    /// pass at most `max_fds` descriptors with one frame (at most `MAX_FDS`; 0: none, every
    /// descriptor received is closed at once and its frame refused). What we send may carry
    /// up to `MAX_FDS`.
    pub fn with_limits(fd: OwnedFd, max_frame: usize, max_fds: usize) -> Self {
        Channel {
            fd,
            reader: FrameReader::new(max_frame, max_fds),
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
        // Wiped when it drops, sent or not.
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
            if let Some(frame) = self.reader.next()? {
                return Ok(frame);
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
        Self::with_limits(fd, max, MAX_FDS)
    }

    /// As `Channel::with_limits`. Must be called inside a tokio runtime with IO enabled.
    pub fn with_limits(fd: OwnedFd, max: usize, max_fds: usize) -> io::Result<Self> {
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
                reader: FrameReader::new(max, max_fds),
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
    /// from a `Send` future): use with `send_frame`. The frame is wiped when dropped.
    pub fn encode<T: Serialize>(&self, msg: &T) -> Result<Zeroizing<Vec<u8>>, IpcError> {
        encode_frame(msg, 0, self.max)
    }

    /// Send a frame made by `encode` (no descriptors).
    pub async fn send_frame(&self, frame: Zeroizing<Vec<u8>>) -> Result<(), IpcError> {
        self.send_raw(frame, Vec::new()).await
    }

    /// Owning the frame, the future wipes it when done, or when dropped mid-send.
    async fn send_raw(&self, frame: Zeroizing<Vec<u8>>, raw: Vec<RawFd>) -> Result<(), IpcError> {
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
            if let Some(frame) = self.reader.next()? {
                return Ok(frame);
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
