//! The parent's event loop: starts the child (and its helpers), moves the child's
//! messages, the FIFO's commands, the kernel's events and the signals into `ParentState`,
//! restarts a child that dies, and shuts down cleanly.

use super::state::{send, Outcome, ParentState};
use super::Bound;
use crate::cmdline::{DebugClass, Options};
use crate::config::Loaded;
use crate::ipc::{self, AsyncChannel, IpcError};
use crate::log;
use crate::notes::{self, Note};
use crate::proto::{ReportKind, SocketInfo, ToChild, ToParent};
use crate::sadb::Sadb;
use helpers::pool::ExecSpawner;
use helpers::seccomp::NOTE_FD;
use helpers::service::Secrets;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

struct RunningChild {
    process: Child,
    channel: AsyncChannel,
}

impl RunningChild {
    fn kill(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// Helpers are this program re-executed with the helper role; the parent sends each its
/// secrets (pre-shared keys, private keys) and passes the other end to the child.
pub type Helpers = ExecSpawner<Secrets>;

fn helper_spawner(args: &[String], secrets: Secrets, note: &Arc<OwnedFd>) -> Helpers {
    ExecSpawner::new("/proc/self/exe", args.to_vec(), secrets)
        .env(crate::ROLE_ENV, "helper")
        .arg0("isakmpd: helper")
        .inherit(Arc::clone(note), NOTE_FD)
}

/// Start the child: re-execute this program with the child role, its socketpair end as
/// descriptor `CHILD_FD`, and hand it the sockets and `n` fresh helpers.
async fn start_child(
    sockets: &[Bound],
    helpers: &mut Helpers,
    n: usize,
    args: &[String],
    loaded: &Loaded,
    capture: bool,
    note: &OwnedFd,
) -> std::io::Result<RunningChild> {
    let mut helper_fds = Vec::with_capacity(n);
    for _ in 0..n {
        helper_fds.push(helpers.spawn_blocking()?);
    }
    let (ours, theirs) = ipc::socketpair()?;
    let mut cmd = Command::new("/proc/self/exe");
    cmd.args(args).env(crate::ROLE_ENV, "child");
    std::os::unix::process::CommandExt::arg0(&mut cmd, "isakmpd: child");
    // No backtrace: reading the binary's debug information would need `open`.
    cmd.env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE");
    ipc::pass_fds_at_exec(
        &mut cmd,
        &[(theirs.as_fd(), crate::CHILD_FD), (note.as_fd(), NOTE_FD)],
    );
    let process = cmd.spawn()?;
    drop(theirs);
    // The child never passes a descriptor up: one that arrives breaks the channel.
    let channel = AsyncChannel::with_limits(ours, ipc::DEFAULT_MAX_FRAME, 0)?;
    // Sockets first, then helpers, in frames of at most MAX_FDS descriptors.
    let mut fds: Vec<(Option<SocketInfo>, BorrowedFd<'_>)> = sockets
        .iter()
        .map(|b| (Some(b.info.clone()), b.socket.as_fd()))
        .collect();
    fds.extend(helper_fds.iter().map(|f| (None, f.as_fd())));
    let io = |e: IpcError| std::io::Error::other(e.to_string());
    let frames: Vec<_> = fds.chunks(ipc::MAX_FDS).collect();
    // No sockets and no helpers still makes one (empty) frame: the child waits for it.
    let frames = if frames.is_empty() {
        vec![&[][..]]
    } else {
        frames
    };
    for (i, frame) in frames.iter().enumerate() {
        let start = ToChild::Start {
            sockets: frame.iter().filter_map(|(s, _)| s.clone()).collect(),
            helpers: frame.iter().filter(|(s, _)| s.is_none()).count(),
            more: i + 1 < frames.len(),
        };
        let these: Vec<BorrowedFd<'_>> = frame.iter().map(|(_, fd)| *fd).collect();
        channel.send_with_fds(&start, &these).await.map_err(io)?;
    }
    if n == 0 {
        channel
            .send(&ToChild::Secrets(loaded.secrets.clone()))
            .await
            .map_err(io)?;
    }
    // Capture first, so that the first exchange the configuration starts is captured too.
    if capture {
        channel.send(&ToChild::Capture(true)).await.map_err(io)?;
    }
    channel
        .send(&ToChild::Config(loaded.child.clone()))
        .await
        .map_err(io)?;
    log::debug(
        DebugClass::Misc,
        10,
        &format!("started child {}", process.id()),
    );
    Ok(RunningChild { process, channel })
}

/// The signals the parent acts on, installed (inside the runtime) before the pid file is
/// written.
pub struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
    usr1: tokio::signal::unix::Signal,
    chld: tokio::signal::unix::Signal,
}

impl Signals {
    pub fn install() -> std::io::Result<Signals> {
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
            usr1: signal(SignalKind::user_defined1())?,
            chld: signal(SignalKind::child())?,
        })
    }
}

/// Minimum time between two child starts, so a child that dies at once cannot spin us.
const RESTART_DELAY: Duration = Duration::from_secs(1);
/// How often rate-limited log lines are summed up.
const SUMMARY_INTERVAL: Duration = Duration::from_secs(10);

pub async fn run(
    opts: Options,
    loaded: Loaded,
    sockets: Vec<Bound>,
    n_helpers: usize,
    fifo: OwnedFd,
    args: Vec<String>,
    signals: Signals,
) -> i32 {
    let (note_read, note) = match notes::pipe() {
        Ok(p) => p,
        Err(e) => {
            log::error(&format!("seccomp note pipe: {e}"));
            return 1;
        }
    };
    let (note_tx, mut note_rx) = mpsc::channel::<Note>(16);
    notes::spawn_reader(note_read, note_tx);
    let mut helpers = helper_spawner(&args, loaded.secrets.clone(), &note);
    let Signals {
        mut term,
        mut int,
        mut hup,
        mut usr1,
        mut chld,
    } = signals;
    let sadb = match Sadb::open(opts.no_kernel, !opts.no_flows).await {
        Ok(k) => k,
        Err(e) => {
            log::error(&e.to_string());
            return 1;
        }
    };
    let mut st = ParentState::new(opts, loaded, sadb);
    // -L / -l: capture from the start.
    if let Some(path) = st.opts.packet_log.clone() {
        st.capture_on(&path);
    }
    let (fifo_tx, mut fifo_rx) = mpsc::channel::<Vec<u8>>(64);
    crate::fifo_file::spawn_reader(fifo, fifo_tx);
    let mut fifo_lines = fifo::LineReader::new();
    let mut summaries = tokio::time::interval(SUMMARY_INTERVAL);
    let mut child: Option<RunningChild> = None;
    let mut last_start: Option<tokio::time::Instant> = None;
    loop {
        if child.is_none() {
            if let Some(t) = last_start {
                // A new child knows nothing of the old one's SAs: it starts from a clean
                // kernel, and its peers hear INITIAL-CONTACT.
                match st
                    .authority
                    .flush(&st.sadb, "left by the previous child")
                    .await
                {
                    Ok(downs) => st.run_updown(downs),
                    Err(e) => log::error(&e.to_string()),
                }
                tokio::time::sleep_until(t + RESTART_DELAY).await;
            }
            last_start = Some(tokio::time::Instant::now());
            let capturing = st.capturing();
            match start_child(
                &sockets,
                &mut helpers,
                n_helpers,
                &args,
                &st.loaded,
                capturing,
                &note,
            )
            .await
            {
                Ok(c) => child = Some(c),
                Err(e) => {
                    log::error(&format!("cannot start child: {e}"));
                    continue;
                }
            }
        }
        let Some(c) = child.as_mut() else { continue };
        let mut outcome = Outcome::Continue;
        tokio::select! {
            _ = term.recv() => return shutdown(child, st).await,
            _ = int.recv() => return shutdown(child, st).await,
            event = st.sadb.next_event() => send(&c.channel, &ToChild::Kernel(event)).await,
            _ = hup.recv() => {
                log::info("SIGHUP: reloading the configuration");
                outcome = st.reload(&c.channel).await;
            }
            _ = usr1.recv() => st.ask_report(ReportKind::State, &c.channel).await,
            _ = chld.recv() => {
                for (pid, status) in helpers.exited() {
                    log::limited(
                        "helpers exited",
                        log::Level::Warning,
                        &format!("helper {pid} exited ({status})"),
                    );
                }
                if let Ok(Some(status)) = c.process.try_wait() {
                    log::warning(&format!("child {} exited ({status}), restarting", c.process.id()));
                    child = None;
                }
            }
            Some(chunk) = fifo_rx.recv() => {
                for parsed in fifo_lines.push(&chunk) {
                    match parsed {
                        Ok(cmd) => {
                            outcome = st.on_command(cmd, &c.channel).await;
                            if outcome != Outcome::Continue {
                                break;
                            }
                        }
                        Err(e) => log::limited(
                            "FIFO lines ignored",
                            log::Level::Warning,
                            &format!("fifo: {e}; line ignored"),
                        ),
                    }
                }
            }
            _ = summaries.tick() => log::limited_summaries(),
            Some(n) = note_rx.recv() => {
                let child_pid = c.process.id();
                log_note(n, child_pid, &helpers.pids());
            }
            m = c.channel.recv::<ToParent>() => match m {
                Ok(ToParent::Ready) => log::debug(DebugClass::Misc, 10, "child ready"),
                Ok(ToParent::NewHelper) => {
                    let live = helpers.pids().len();
                    let reply = if live >= n_helpers {
                        log::limited(
                            "helpers refused",
                            log::Level::Warning,
                            &format!("child asked for a helper with {live} alive; refused"),
                        );
                        c.channel.send(&ToChild::NoHelper).await
                    } else {
                        match helpers.spawn_blocking() {
                            Ok(fd) => {
                                log::debug(DebugClass::Misc, 10, "started a replacement helper");
                                c.channel.send_with_fds(&ToChild::Helper, &[fd.as_fd()]).await
                            }
                            Err(e) => {
                                log::error(&format!("cannot start a helper: {e}"));
                                c.channel.send(&ToChild::NoHelper).await
                            }
                        }
                    };
                    if let Err(e) = reply {
                        log::warning(&format!("child channel: {e}"));
                    }
                }
                Ok(other) => st.on_child(other, &c.channel).await,
                Err(IpcError::Closed) | Err(IpcError::Truncated { .. }) => {
                    // The child is gone or going: reap it and start another.
                    let _ = c.process.kill();
                    let how = match c.process.wait() {
                        Ok(s) => s.to_string(),
                        Err(e) => e.to_string(),
                    };
                    log::warning(&format!("child {} died ({how}), restarting", c.process.id()));
                    child = None;
                }
                Err(e) => {
                    // The child breaks the protocol: it is not to be trusted any more.
                    log::error(&format!("child {}: {e}; killing it", c.process.id()));
                    c.kill();
                    child = None;
                }
            },
        }
        match outcome {
            Outcome::Continue => {}
            Outcome::Shutdown => return shutdown(child, st).await,
            Outcome::RestartChild => {
                // Helpers hold the secrets from their start.
                helpers = helper_spawner(&args, st.loaded.secrets.clone(), &note);
                if let Some(mut c) = child.take() {
                    c.kill();
                }
            }
        }
    }
}

/// What a SIGSYS handler wrote: which process its filter killed, for which call.
fn log_note(n: Note, child: u32, helpers: &[u32]) {
    match n {
        Note::Killed { pid, syscall } => {
            let who = if pid == child {
                "child"
            } else if helpers.contains(&pid) {
                "helper"
            } else {
                "process"
            };
            log::limited(
                "seccomp kills",
                log::Level::Error,
                &format!(
                    "{who} {pid} killed by its seccomp filter: system call {syscall} ({})",
                    helpers::seccomp::syscall_name(syscall)
                ),
            );
        }
        Note::Garbage(g) => log::limited(
            "malformed seccomp notes",
            log::Level::Warning,
            &format!("malformed note on the seccomp pipe: \"{g}\""),
        ),
    }
}

/// SIGTERM, FIFO `Q`: the child deletes its SAs (telling the peers unless -S) and exits.
/// Until it has, its kernel requests are still served, so that its deletes reach the
/// kernel and the tunnels' down scripts run. Whatever of ours is left in the kernel then
/// goes too, and the updown scripts due are waited for (each has its timeout).
async fn shutdown(child: Option<RunningChild>, mut st: ParentState) -> i32 {
    log::info("shutting down");
    if let Some(mut c) = child {
        send(&c.channel, &ToChild::Shutdown).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            tokio::select! {
                m = c.channel.recv::<ToParent>() => match m {
                    Ok(m @ ToParent::Kernel { .. }) => st.on_child(m, &c.channel).await,
                    Ok(_) => {}
                    Err(_) => break,
                },
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
        let exited = matches!(c.process.try_wait(), Ok(Some(_)));
        if !exited {
            let _ = c.process.kill();
        }
        let _ = c.process.wait();
    }
    let status = match st.authority.flush(&st.sadb, "at shutdown").await {
        Ok(downs) => {
            st.run_updown(downs);
            0
        }
        Err(e) => {
            log::error(&e.to_string());
            1
        }
    };
    // Two verbs each may run into the timeout.
    let deadline = std::time::Instant::now() + 2 * st.updown.timeout() + Duration::from_secs(1);
    if !st.updown.drain(deadline) {
        log::warning("shutting down with updown scripts still running");
    }
    status
}
