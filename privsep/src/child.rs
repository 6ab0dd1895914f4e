//! The unprivileged child: takes the sockets from the parent, drops every privilege, then
//! reads datagrams. Every packet from the network is handled here and nowhere else.

use crate::cmdline::{DebugClass, Options};
use crate::driver::{Driver, Pool};
use crate::ipc::{self, AsyncChannel, Channel, IpcError};
use crate::log;
use crate::privdrop::{self, DropConfig};
use crate::proto::{ReportKind, SocketInfo, ToChild, ToParent};
use helpers::pool::{helper_main as pool_helper_main, inherited_socket, HelperPool};
use helpers::pool::{Privileges, Spawner};
use helpers::service::{Crypto, Secrets};
use std::collections::VecDeque;
use std::io::Write;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

/// Largest datagram we read; IKEv1 messages with certificates stay well below this.
const MAX_DATAGRAM: usize = 65535;

/// The child's whole life. Returns the process exit status.
pub fn main(opts: Options) -> i32 {
    // Logging first: syslog is opened here (LOG_NDELAY) so it survives the chroot.
    log::init(
        if opts.foreground {
            log::Target::Stderr
        } else {
            log::Target::Syslog
        },
        opts.verbose,
        &opts.debug,
    );
    // Before the filter: OpenSSL reads its configuration file on first use.
    openssl::init();
    let Some(fd) = ipc::take_inherited_fd(crate::CHILD_FD) else {
        log::error("child: no channel to the parent");
        return 1;
    };
    let mut ch = Channel::new(fd);
    let (mut infos, mut fds, mut helper_fds) = (Vec::new(), Vec::new(), Vec::new());
    loop {
        match ch.recv_with_fds::<ToChild>() {
            Ok((
                ToChild::Start {
                    sockets,
                    helpers,
                    more,
                },
                mut these,
            )) if sockets.len().checked_add(helpers) == Some(these.len()) => {
                helper_fds.extend(these.split_off(sockets.len()));
                infos.extend(sockets);
                fds.extend(these);
                if !more {
                    break;
                }
            }
            Ok((m, these)) => {
                log::error(&format!(
                    "child: expected the sockets first, got {m:?} with {} descriptors",
                    these.len()
                ));
                return 1;
            }
            Err(e) => {
                log::error(&format!("child: {e}"));
                return 1;
            }
        }
    }
    // Still single-threaded: the drop covers the whole process.
    match privdrop::drop_privileges(&DropConfig::default()) {
        Ok(c) => log::debug(
            DebugClass::Misc,
            10,
            &format!("child: running as {} ({}:{})", c.name, c.uid, c.gid),
        ),
        Err(e) => {
            log::error(&format!("child: {e}"));
            return 1;
        }
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            log::error(&format!("child: runtime: {e}"));
            return 1;
        }
    };
    // The runtime's descriptors and the syslog socket exist: from here on the child opens
    // nothing, connects nothing, starts nothing.
    log::confine();
    if let Err(e) = helpers::seccomp::install(helpers::seccomp::Profile::Child) {
        log::error(&format!("child: seccomp: {e}"));
        return 1;
    }
    rt.block_on(run(opts, ch, infos, fds, helper_fds))
}

/// The helper pool's way to new helpers: those the parent handed over at start, then one
/// per `NewHelper` request, which the main loop forwards to the parent.
struct ParentSpawner {
    initial: Vec<OwnedFd>,
    requests: mpsc::UnboundedSender<oneshot::Sender<std::io::Result<OwnedFd>>>,
}

impl Spawner for ParentSpawner {
    fn spawn(
        &mut self,
        _slot: usize,
    ) -> impl std::future::Future<Output = std::io::Result<OwnedFd>> + Send {
        let initial = self.initial.pop();
        let requests = self.requests.clone();
        async move {
            if let Some(fd) = initial {
                return Ok(fd);
            }
            let (tx, rx) = oneshot::channel();
            requests
                .send(tx)
                .map_err(|_| std::io::Error::other("child is shutting down"))?;
            rx.await
                .unwrap_or_else(|_| Err(std::io::Error::other("no answer from the parent")))
        }
    }
}

async fn run(
    opts: Options,
    ch: Channel,
    infos: Vec<SocketInfo>,
    fds: Vec<OwnedFd>,
    helper_fds: Vec<OwnedFd>,
) -> i32 {
    let mut parent = match AsyncChannel::new(ch.into_fd()) {
        Ok(c) => c,
        Err(e) => {
            log::error(&format!("child: {e}"));
            return 1;
        }
    };
    let mut sockets = Vec::new();
    for (info, fd) in infos.into_iter().zip(fds) {
        let std_sock = std::net::UdpSocket::from(fd);
        let sock = std_sock
            .set_nonblocking(true)
            .and_then(|()| UdpSocket::from_std(std_sock));
        match sock {
            Ok(s) => sockets.push((info, s)),
            Err(e) => {
                log::error(&format!("child: socket {}: {e}", info.local));
                return 1;
            }
        }
    }
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(usize, SocketAddr, Vec<u8>)>(256);
    let sockets = std::sync::Arc::new(sockets);
    for i in 0..sockets.len() {
        let (sockets, tx) = (sockets.clone(), tx.clone());
        tokio::spawn(async move {
            let mut buf = vec![0u8; MAX_DATAGRAM];
            loop {
                match sockets[i].1.recv_from(&mut buf).await {
                    Ok((n, from)) => {
                        if tx.send((i, from, buf[..n].to_vec())).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => log::warning(&format!("recv on {}: {e}", sockets[i].0.local)),
                }
            }
        });
    }
    drop(tx);
    let (spawn_tx, mut spawn_rx) = mpsc::unbounded_channel();
    let n = helper_fds.len();
    // With helpers the pool starts now; with `-j 0` it waits for the secrets.
    let mut pool: Option<Arc<Pool>> = if n == 0 {
        None
    } else {
        let spawner = ParentSpawner {
            initial: helper_fds,
            requests: spawn_tx,
        };
        match HelperPool::<Crypto>::start(n, spawner).await {
            Ok(p) => Some(Arc::new(p)),
            Err(e) => {
                log::error(&format!("child: helpers: {e}"));
                return 1;
            }
        }
    };
    let mut waiting_helpers: VecDeque<oneshot::Sender<std::io::Result<OwnedFd>>> = VecDeque::new();
    if parent.send(&ToParent::Ready).await.is_err() {
        return 1;
    }
    let (crypto_tx, mut crypto_rx) = mpsc::unbounded_channel();
    let mut capture = false;
    let mut driver: Option<Driver> = None;
    // isakmpd's Check-interval: active connections that are down are started again.
    let mut check = tokio::time::interval(Duration::from_secs(60));
    loop {
        let deadline = driver
            .as_ref()
            .and_then(|d| d.engine.poll_timeout())
            .map(tokio::time::Instant::from_std)
            .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            Some(reply) = spawn_rx.recv() => {
                if let Err(e) = parent.send(&ToParent::NewHelper).await {
                    let _ = reply.send(Err(std::io::Error::other(e.to_string())));
                } else {
                    waiting_helpers.push_back(reply);
                }
            }
            m = parent.recv_with_fds::<ToChild>() => match m {
                Ok((ToChild::Helper, mut fds)) => {
                    if let (Some(reply), Some(fd)) = (waiting_helpers.pop_front(), fds.pop()) {
                        let _ = reply.send(Ok(fd));
                    }
                }
                Ok((ToChild::NoHelper, _)) => {
                    if let Some(reply) = waiting_helpers.pop_front() {
                        let _ = reply.send(Err(std::io::Error::other("the parent refused a helper")));
                    }
                }
                Ok((ToChild::Secrets(secrets), _)) if pool.is_none() => {
                    log::notice("-j 0: crypto runs in the child, which therefore holds the secrets");
                    pool = Some(Arc::new(HelperPool::<Crypto>::inline(secrets)));
                }
                Ok((ToChild::Secrets(_), _)) => log::warning("child: secrets sent although helpers run; ignored"),
                Ok((ToChild::Config(cfg), _)) => match driver.as_mut() {
                    Some(d) => match crate::driver::policy(&cfg) {
                        Ok(p) => {
                            d.conf = cfg.conf.clone();
                            d.engine.set_policy(p);
                            d.engine.start_active(Instant::now());
                            log::info("configuration reloaded");
                        }
                        Err(e) => log::error(&e.to_string()),
                    },
                    None => {
                        let pool = pool.get_or_insert_with(|| Arc::new(HelperPool::<Crypto>::inline(Secrets::default())));
                        match Driver::new(&opts, &cfg, sockets.clone(), pool.clone(), crypto_tx.clone()) {
                            Ok(mut d) => {
                                let secs = crate::driver::policy(&cfg).map(|p| p.general.check_interval).unwrap_or(60);
                                check = tokio::time::interval(Duration::from_secs(secs.max(1)));
                                d.engine.set_capture(capture);
                                d.engine.start_active(Instant::now());
                                driver = Some(d);
                            }
                            Err(e) => {
                                log::error(&e.to_string());
                                return 1;
                            }
                        }
                    }
                },
                Ok((ToChild::Capture(on), _)) => {
                    capture = on;
                    if let Some(d) = driver.as_mut() {
                        d.engine.set_capture(on);
                    }
                }
                Ok((ToChild::Command(cmd), _)) => match driver.as_mut() {
                    Some(d) => crate::commands::execute(cmd, d),
                    None => log::warning(&format!("{cmd:?}: no configuration yet; ignored")),
                },
                Ok((ToChild::Debug(setting), _)) => crate::commands::apply_debug(setting),
                Ok((ToChild::Kernel(event), _)) => {
                    if let Some(d) = driver.as_mut() {
                        d.engine.handle_kernel(Instant::now(), event);
                    }
                }
                Ok((ToChild::Shutdown, _)) => {
                    if let Some(d) = driver.as_mut() {
                        d.engine.shutdown(Instant::now());
                        d.pump();
                        flush_kernel(d, &mut parent).await;
                    }
                    return 0;
                }
                Ok((ToChild::Report(kind), _)) => {
                    let text = match (driver.as_ref(), kind) {
                        (None, _) => "isakmpd report: no configuration yet\n".to_string(),
                        (Some(d), ReportKind::State) => d.report(),
                        (Some(d), ReportKind::Sas) => d.report_sas(),
                    };
                    if let Err(e) = parent.send(&ToParent::Report { kind, text }).await {
                        log::warning(&format!("child: report not sent: {e}"));
                    }
                }
                Ok((ToChild::Start { .. }, _)) => log::warning("child: start sent twice; ignored"),
                Err(IpcError::Closed) => return 0, // the parent is gone: so are we
                Err(e) => {
                    log::error(&format!("child: parent channel: {e}"));
                    return 1;
                }
            },
            d = rx.recv() => match d {
                Some((i, from, bytes)) => {
                    log::debug(DebugClass::Transport, 10, &format!("received {} bytes from {from} on {}", bytes.len(), sockets[i].0.local));
                    if let Some(d) = driver.as_mut() {
                        d.engine.handle_datagram(Instant::now(), sockets[i].0.local, from, &bytes);
                    }
                }
                None => return 1,
            },
            Some((id, result)) = crypto_rx.recv() => {
                if let Some(d) = driver.as_mut() {
                    d.engine.handle_crypto(Instant::now(), id, result);
                }
            }
            _ = tokio::time::sleep_until(deadline) => {
                if let Some(d) = driver.as_mut() {
                    d.engine.handle_timeout(Instant::now());
                }
            }
            _ = check.tick() => {
                if let Some(d) = driver.as_mut() {
                    d.engine.start_active(Instant::now());
                }
            }
        }
        if let Some(d) = driver.as_mut() {
            d.pump();
            flush_kernel(d, &mut parent).await;
        }
    }
}

/// Send the engine's kernel requests and captured packets to the parent.
async fn flush_kernel(d: &mut Driver, parent: &mut AsyncChannel) {
    for (from, to, bytes) in std::mem::take(&mut d.packets) {
        if let Err(e) = parent.send(&ToParent::Packet { from, to, bytes }).await {
            log::error(&format!("child: cannot reach the parent: {e}"));
        }
    }
    for (id, request) in std::mem::take(&mut d.kernel) {
        if let Err(e) = parent
            .send(&ToParent::Kernel {
                id,
                request: Box::new(request),
            })
            .await
        {
            log::error(&format!("child: cannot reach the parent: {e}"));
        }
    }
}

/// A helper process of the daemon: always drops privileges (tests of the pool that cannot
/// drop use their own helper entry, never this one).
pub fn helper_main() -> i32 {
    // Who to become is read from /etc/passwd, so before the chroot.
    let privileges = match DropConfig::helper() {
        Ok(cfg) => Privileges::Drop(cfg),
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "isakmpd helper: {e}");
            return 1;
        }
    };
    match inherited_socket().and_then(|s| pool_helper_main::<Crypto>(s, &privileges)) {
        Ok(()) => 0,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "isakmpd helper: {e}");
            1
        }
    }
}
