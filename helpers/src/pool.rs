//! A pool of helper processes and the client that spreads requests over them.
//!
//! Roles:
//! - the *helper* (`helper_main`): drops privileges, confines itself with the helper seccomp
//!   profile, receives its secrets as the first frame, then answers `Tagged<Request>` with
//!   `Tagged<Response>` until EOF;
//! - the *spawner* (`Spawner`, e.g. `ExecSpawner`): starts a helper, sends it the secrets and
//!   returns the other end of its socketpair. In the daemon this is the parent (it holds the
//!   secrets); the child asks it for a replacement over IPC;
//! - the *client* (`HelperPool`): gives each request to the least-loaded helper, tagged with
//!   the caller's request id (the engine's: the pool numbers nothing itself), matches
//!   responses, notices a dead helper (EOF), fails its in-flight requests back to their
//!   callers and asks the spawner for a replacement.
//!
//! The pool is generic over `HelperService`; the crypto helper will be
//! `impl HelperService for CryptoHelper { .. fn serve(..) { ike::crypto::serve(req, &self.store) } }`.

use crate::ipc::{self, AsyncChannel, Channel, IpcError};
use crate::privdrop::{self, DropConfig, PrivDropError};
use crate::seccomp::{self, Profile, SeccompError};
pub use ike::engine::RequestId;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::io;
use std::os::fd::{AsFd, OwnedFd, RawFd};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

/// The work a helper does.
pub trait HelperService: Sized + 'static {
    /// What the helper receives once, at start (pre-shared keys, private keys).
    type Secrets: Serialize + DeserializeOwned;
    type Request: Serialize + DeserializeOwned + Send + 'static;
    type Response: Serialize + DeserializeOwned + Send + 'static;
    fn new(secrets: Self::Secrets) -> Self;
    fn serve(&mut self, req: Self::Request) -> Self::Response;
}

/// A request or response with the id the client matches on (on the socket the same bytes
/// as a bare `u64`).
#[derive(Debug, Serialize, Deserialize)]
pub struct Tagged<T> {
    pub id: RequestId,
    pub body: T,
}

/// Whether a helper drops privileges. The daemon always uses `Drop` (with
/// `DropConfig::helper()`); the other two exist only so that the pool can be tested by an
/// unprivileged user, who cannot drop.
#[derive(Debug, Clone)]
pub enum Privileges {
    /// Become `DropConfig`'s identity, then install the helper seccomp profile.
    Drop(DropConfig),
    /// Neither.
    KeepForTests,
    /// The seccomp profile without the drop (which needs root).
    SeccompOnlyForTests,
}

/// Descriptor number a spawned helper finds its socket on.
pub const HELPER_FD: RawFd = 3;

#[derive(Debug)]
pub enum HelperError {
    Ipc(IpcError),
    Privileges(PrivDropError),
    Seccomp(SeccompError),
    NoSocket,
}

impl fmt::Display for HelperError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HelperError::Ipc(e) => write!(f, "helper: {e}"),
            HelperError::Privileges(e) => write!(f, "helper: {e}"),
            HelperError::Seccomp(e) => write!(f, "helper: {e}"),
            HelperError::NoSocket => write!(f, "helper: descriptor {HELPER_FD} is not open"),
        }
    }
}

impl std::error::Error for HelperError {}

/// The socket a helper started by `ExecSpawner` inherited. Call once, at start-up.
pub fn inherited_socket() -> Result<OwnedFd, HelperError> {
    ipc::take_inherited_fd(HELPER_FD).ok_or(HelperError::NoSocket)
}

/// A helper process's whole life: drop privileges, install the seccomp filter, take the
/// secrets, serve until EOF. Returns `Ok(())` when the client closes the socket. Blocking;
/// call while single-threaded (a thread started before would be confined by the filter but
/// keep its privileges).
pub fn helper_main<S: HelperService>(
    sock: OwnedFd,
    privileges: &Privileges,
) -> Result<(), HelperError> {
    // OpenSSL reads its configuration (providers included) now, while the file is still in
    // sight: after the chroot it is not, and after the filter opening it would kill us.
    openssl::init();
    let confine = || seccomp::install(Profile::Helper).map_err(HelperError::Seccomp);
    match privileges {
        Privileges::Drop(cfg) => {
            privdrop::drop_privileges(cfg).map_err(HelperError::Privileges)?;
            // Before the secrets arrive: a helper that is made to misbehave while it holds
            // them can no longer open, connect or exec anything.
            confine()?;
        }
        Privileges::SeccompOnlyForTests => confine()?,
        Privileges::KeepForTests => {}
    }
    // The client never passes descriptors to a helper: any that arrive are closed at once.
    let mut ch = Channel::with_limits(sock, ipc::DEFAULT_MAX_FRAME, 0);
    let secrets: S::Secrets = ch.recv().map_err(HelperError::Ipc)?;
    let mut service = S::new(secrets);
    loop {
        let req: Tagged<S::Request> = match ch.recv() {
            Ok(r) => r,
            Err(IpcError::Closed) => return Ok(()),
            Err(e) => return Err(HelperError::Ipc(e)),
        };
        let body = service.serve(req.body);
        ch.send(&Tagged { id: req.id, body })
            .map_err(HelperError::Ipc)?;
    }
}

/// Starts helpers and hands back the client end of each one's socket, secrets already sent.
pub trait Spawner: Send + 'static {
    fn spawn(&mut self, slot: usize) -> impl Future<Output = io::Result<OwnedFd>> + Send;
}

/// Spawns helpers by executing a program (normally `/proc/self/exe` with a role marker)
/// with the helper's end of a socketpair as descriptor `HELPER_FD`.
pub struct ExecSpawner<Sec> {
    program: std::path::PathBuf,
    args: Vec<String>,
    envs: Vec<(String, String)>,
    arg0: Option<String>,
    secrets: Sec,
    /// A descriptor every helper gets at a fixed number (the seccomp note pipe).
    extra_fd: Option<(std::sync::Arc<OwnedFd>, RawFd)>,
    children: Vec<Child>,
    exited: Vec<(u32, std::process::ExitStatus)>,
}

impl<Sec: Serialize + Send + Sync + 'static> ExecSpawner<Sec> {
    pub fn new(program: impl Into<std::path::PathBuf>, args: Vec<String>, secrets: Sec) -> Self {
        ExecSpawner {
            program: program.into(),
            args,
            envs: Vec::new(),
            arg0: None,
            secrets,
            extra_fd: None,
            children: Vec::new(),
            exited: Vec::new(),
        }
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.envs.push((key.to_string(), value.to_string()));
        self
    }

    /// Give every helper `fd` as descriptor `target` (not `HELPER_FD`).
    pub fn inherit(mut self, fd: std::sync::Arc<OwnedFd>, target: RawFd) -> Self {
        self.extra_fd = Some((fd, target));
        self
    }

    /// The name the helper shows in ps(1).
    pub fn arg0(mut self, name: &str) -> Self {
        self.arg0 = Some(name.to_string());
        self
    }

    /// Start one helper (blocking) and return the client end, secrets sent.
    pub fn spawn_blocking(&mut self) -> io::Result<OwnedFd> {
        self.reap();
        let (ours, theirs) = ipc::socketpair()?;
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args);
        if let Some(a) = &self.arg0 {
            std::os::unix::process::CommandExt::arg0(&mut cmd, a);
        }
        for (k, v) in &self.envs {
            cmd.env(k, v);
        }
        let mut fds = vec![(theirs.as_fd(), HELPER_FD)];
        if let Some((fd, target)) = &self.extra_fd {
            fds.push((fd.as_fd(), *target));
        }
        ipc::pass_fds_at_exec(&mut cmd, &fds);
        let child = cmd.spawn()?;
        drop(theirs);
        self.children.push(child);
        let ch = Channel::new(ours);
        ch.send(&self.secrets)
            .map_err(|e| io::Error::other(e.to_string()))?;
        Ok(ch.into_fd())
    }

    /// Pids of the helpers started and not yet reaped.
    pub fn pids(&mut self) -> Vec<u32> {
        self.reap();
        self.children.iter().map(|c| c.id()).collect()
    }

    /// Helpers that exited since the last call, with how (a seccomp kill is SIGSYS).
    pub fn exited(&mut self) -> Vec<(u32, std::process::ExitStatus)> {
        self.reap();
        std::mem::take(&mut self.exited)
    }

    fn reap(&mut self) {
        let exited = &mut self.exited;
        self.children.retain_mut(|c| match c.try_wait() {
            Ok(Some(status)) => {
                exited.push((c.id(), status));
                false
            }
            _ => true,
        });
    }
}

impl<Sec> Drop for ExecSpawner<Sec> {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl<Sec: Serialize + Send + Sync + 'static> Spawner for ExecSpawner<Sec> {
    fn spawn(&mut self, _slot: usize) -> impl Future<Output = io::Result<OwnedFd>> + Send {
        let r = self.spawn_blocking();
        async move { r }
    }
}

/// Why a call did not produce a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolError {
    /// The helper died (or its channel broke) with this request in flight.
    HelperDied(String),
    /// The pool is shutting down or has no helpers left.
    Closed,
    /// A request with this id is already in flight on the helper (a caller's bug); the
    /// second one is not sent, so the first still gets its own answer.
    DuplicateId(RequestId),
}

impl fmt::Display for PoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PoolError::HelperDied(why) => write!(f, "helper died: {why}"),
            PoolError::Closed => write!(f, "helper pool closed"),
            PoolError::DuplicateId(id) => write!(f, "request {} already in flight", id.0),
        }
    }
}

impl std::error::Error for PoolError {}

type Reply<R> = oneshot::Sender<Result<R, PoolError>>;

struct Slot<Req, Resp> {
    queue: mpsc::UnboundedSender<(RequestId, Req, Reply<Resp>)>,
    load: Arc<AtomicUsize>,
}

/// Counters for tests and the report.
#[derive(Debug, Default)]
pub struct PoolStats {
    pub respawns: AtomicUsize,
    pub failed_in_flight: AtomicUsize,
}

enum Mode<S: HelperService> {
    Inline(Mutex<S>),
    Processes(Vec<Slot<S::Request, S::Response>>),
}

/// The client side. Cheap to share behind an `Arc`; `call` may run concurrently.
pub struct HelperPool<S: HelperService> {
    mode: Mode<S>,
    stats: Arc<PoolStats>,
}

/// Requests one helper may have outstanding; more wait in the client. Bounding the window
/// bounds the bytes in both socket directions, so neither side can block the other.
pub const WINDOW: usize = 32;

impl<S: HelperService> HelperPool<S> {
    /// No helper processes: requests are served in the calling process (`-h 0`).
    pub fn inline(secrets: S::Secrets) -> Self {
        HelperPool {
            mode: Mode::Inline(Mutex::new(S::new(secrets))),
            stats: Arc::new(PoolStats::default()),
        }
    }

    /// Start `n` helpers with `spawner`; must run inside a tokio runtime (tasks are spawned).
    pub async fn start<P: Spawner>(n: usize, spawner: P) -> io::Result<Self> {
        let spawner = Arc::new(tokio::sync::Mutex::new(spawner));
        let stats = Arc::new(PoolStats::default());
        let mut slots = Vec::with_capacity(n);
        for slot in 0..n {
            let fd = spawner.lock().await.spawn(slot).await?;
            let (tx, rx) = mpsc::unbounded_channel();
            let load = Arc::new(AtomicUsize::new(0));
            let task = SlotTask::<S, P> {
                slot,
                spawner: spawner.clone(),
                load: load.clone(),
                stats: stats.clone(),
                queue: rx,
                waiting: VecDeque::new(),
                in_flight: HashMap::new(),
            };
            let ch = client_channel(fd)?;
            tokio::spawn(task.run(ch));
            slots.push(Slot { queue: tx, load });
        }
        Ok(HelperPool {
            mode: Mode::Processes(slots),
            stats,
        })
    }

    pub fn stats(&self) -> &PoolStats {
        &self.stats
    }

    /// Number of helper processes (0 when inline).
    pub fn size(&self) -> usize {
        match &self.mode {
            Mode::Inline(_) => 0,
            Mode::Processes(s) => s.len(),
        }
    }

    /// Requests queued or in flight per helper.
    pub fn loads(&self) -> Vec<usize> {
        match &self.mode {
            Mode::Inline(_) => Vec::new(),
            Mode::Processes(s) => s.iter().map(|s| s.load.load(Ordering::SeqCst)).collect(),
        }
    }

    /// Send a request to the least-loaded helper and wait for its response. `id` is the
    /// caller's and must be unique among its requests in flight.
    pub async fn call(&self, id: RequestId, req: S::Request) -> Result<S::Response, PoolError> {
        let slots = match &self.mode {
            Mode::Inline(s) => {
                let mut s = s.lock().map_err(|_| PoolError::Closed)?;
                return Ok(s.serve(req));
            }
            Mode::Processes(slots) => slots,
        };
        let slot = slots
            .iter()
            .min_by_key(|s| s.load.load(Ordering::SeqCst))
            .ok_or(PoolError::Closed)?;
        let (tx, rx) = oneshot::channel();
        slot.load.fetch_add(1, Ordering::SeqCst);
        if slot.queue.send((id, req, tx)).is_err() {
            slot.load.fetch_sub(1, Ordering::SeqCst);
            return Err(PoolError::Closed);
        }
        rx.await.unwrap_or(Err(PoolError::Closed))
    }
}

/// The client's end of a helper's socket. A helper never passes descriptors: any that
/// arrive are closed at once.
fn client_channel(fd: OwnedFd) -> io::Result<AsyncChannel> {
    AsyncChannel::with_limits(fd, ipc::DEFAULT_MAX_FRAME, 0)
}

struct SlotTask<S: HelperService, P> {
    slot: usize,
    spawner: Arc<tokio::sync::Mutex<P>>,
    load: Arc<AtomicUsize>,
    stats: Arc<PoolStats>,
    queue: mpsc::UnboundedReceiver<(RequestId, S::Request, Reply<S::Response>)>,
    waiting: VecDeque<(RequestId, S::Request, Reply<S::Response>)>,
    in_flight: HashMap<RequestId, Reply<S::Response>>,
}

impl<S: HelperService, P: Spawner> SlotTask<S, P> {
    fn finish(&mut self, reply: Reply<S::Response>, r: Result<S::Response, PoolError>) {
        self.load.fetch_sub(1, Ordering::SeqCst);
        let _ = reply.send(r);
    }

    async fn run(mut self, ch: AsyncChannel) {
        let mut ch = Some(ch);
        loop {
            let Some(current) = ch.take() else {
                return;
            };
            let why = self.serve_one(current).await;
            let Some(why) = why else {
                return; // the pool was dropped
            };
            let failed: Vec<_> = self.in_flight.drain().collect();
            self.stats
                .failed_in_flight
                .fetch_add(failed.len(), Ordering::SeqCst);
            for (_, reply) in failed {
                self.finish(reply, Err(PoolError::HelperDied(why.clone())));
            }
            // Replace the helper; if that fails, fail everything waiting and retry after a pause.
            loop {
                let spawned = self.spawner.lock().await.spawn(self.slot).await;
                match spawned.and_then(client_channel) {
                    Ok(c) => {
                        self.stats.respawns.fetch_add(1, Ordering::SeqCst);
                        ch = Some(c);
                        break;
                    }
                    Err(e) => {
                        let waiting: Vec<_> = self.waiting.drain(..).collect();
                        for (_, _, reply) in waiting {
                            self.finish(reply, Err(PoolError::HelperDied(e.to_string())));
                        }
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                        if self.queue.is_closed() {
                            return;
                        }
                    }
                }
            }
        }
    }

    /// Serve one helper until its channel fails (returns why) or the pool goes away (None).
    async fn serve_one(&mut self, ch: AsyncChannel) -> Option<String> {
        let (tx, mut rx) = ch.into_split();
        let mut open = !self.queue.is_closed();
        loop {
            if !open && self.in_flight.is_empty() && self.waiting.is_empty() {
                return None;
            }
            while self.in_flight.len() < WINDOW {
                let Some((id, req, reply)) = self.waiting.pop_front() else {
                    break;
                };
                if self.in_flight.contains_key(&id) {
                    self.finish(reply, Err(PoolError::DuplicateId(id)));
                    continue;
                }
                let frame = tx.encode(&Tagged { id, body: req });
                let sent = match frame {
                    Ok(f) => tx.send_frame(f).await,
                    Err(e) => Err(e),
                };
                if let Err(e) = sent {
                    self.in_flight.insert(id, reply);
                    return Some(e.to_string());
                }
                self.in_flight.insert(id, reply);
            }
            tokio::select! {
                r = rx.recv::<Tagged<S::Response>>() => match r {
                    Ok(t) => match self.in_flight.remove(&t.id) {
                        Some(reply) => self.finish(reply, Ok(t.body)),
                        None => return Some(format!("response to unknown request {}", t.id.0)),
                    },
                    Err(e) => return Some(e.to_string()),
                },
                q = self.queue.recv(), if open => match q {
                    Some(item) => self.waiting.push_back(item),
                    None => open = false,
                },
            }
        }
    }
}

#[cfg(test)]
mod tests;
