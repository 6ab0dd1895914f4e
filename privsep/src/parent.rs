//! The privileged parent: checks the configuration file, binds the IKE sockets, starts the
//! unprivileged child with them, restarts it when it dies, and turns signals into messages.

use crate::cmdline::Options;
use crate::config::Loaded;
use crate::files::PidFile;
use crate::ipc::{self, AsyncChannel, IpcError};
use crate::log;
use crate::proto::{ParentCommand, SocketInfo, ToChild, ToParent};
use crate::sadb::Sadb;
use helpers::pool::ExecSpawner;
use helpers::service::Secrets;
use nix::sys::socket::{
    bind, setsockopt, socket, sockopt, AddressFamily, SockFlag, SockType, SockaddrStorage,
};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::process::{Child, Command};
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};

/// A socket bound for the child.
#[derive(Debug)]
pub struct Bound {
    pub info: SocketInfo,
    pub socket: UdpSocket,
}

fn bind_udp(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let family = match addr {
        SocketAddr::V4(_) => AddressFamily::Inet,
        SocketAddr::V6(_) => AddressFamily::Inet6,
    };
    let fd = socket(family, SockType::Datagram, SockFlag::SOCK_CLOEXEC, None)?;
    if addr.is_ipv6() {
        // Without it the :: socket would also take IPv4 and the 0.0.0.0 bind would fail.
        setsockopt(&fd, sockopt::Ipv6V6Only, &true)?;
    }
    bind(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrStorage::from(addr),
    )
    .map_err(|e| std::io::Error::other(format!("bind {addr}: {e}")))?;
    Ok(UdpSocket::from(fd))
}

/// Bind the IKE port (`-p`) and the NAT-T port (`-N`, unless `-T`) on 0.0.0.0 and/or ::
/// (`-4`/`-6`). Port 0 lets the kernel choose (for tests).
pub fn bind_sockets(o: &Options) -> std::io::Result<Vec<Bound>> {
    let mut addrs: Vec<(std::net::IpAddr, bool)> = Vec::new();
    if o.inet4 {
        addrs.push((Ipv4Addr::UNSPECIFIED.into(), false));
    }
    if o.inet6 {
        addrs.push((Ipv6Addr::UNSPECIFIED.into(), false));
    }
    let mut ports = vec![(o.port, false)];
    if !o.no_natt {
        ports.push((o.natt_port, true));
    }
    let mut out = Vec::new();
    for (port, natt) in ports {
        for (ip, _) in &addrs {
            let socket = bind_udp(SocketAddr::new(*ip, port))?;
            let local = socket.local_addr()?;
            out.push(Bound {
                info: SocketInfo { local, natt },
                socket,
            });
        }
    }
    Ok(out)
}

/// Bind the IKE and NAT-T ports on each of `addrs` (as isakmpd binds per interface
/// address, so that the engine knows which address a datagram came to), or on the wildcard
/// addresses when `addrs` is empty.
pub fn bind_addresses(o: &Options, addrs: &[std::net::IpAddr]) -> std::io::Result<Vec<Bound>> {
    if addrs.is_empty() {
        return bind_sockets(o);
    }
    let mut ports = vec![(o.port, false)];
    if !o.no_natt {
        ports.push((o.natt_port, true));
    }
    let mut out = Vec::new();
    for (port, natt) in ports {
        for ip in addrs
            .iter()
            .filter(|a| (a.is_ipv4() && o.inet4) || (a.is_ipv6() && o.inet6))
        {
            let socket = bind_udp(SocketAddr::new(*ip, port))?;
            let local = socket.local_addr()?;
            out.push(Bound {
                info: SocketInfo { local, natt },
                socket,
            });
        }
    }
    Ok(out)
}

/// This host's addresses (IPv6 link-local ones left out: they need a scope to be usable).
pub fn interface_addresses() -> Vec<std::net::IpAddr> {
    let mut out = Vec::new();
    if let Ok(addrs) = nix::ifaddrs::getifaddrs() {
        for a in addrs {
            let Some(sa) = a.address else { continue };
            let ip = if let Some(v4) = sa.as_sockaddr_in() {
                std::net::IpAddr::V4(v4.ip())
            } else if let Some(v6) = sa.as_sockaddr_in6() {
                let ip = v6.ip();
                if ip.segments()[0] & 0xffc0 == 0xfe80 {
                    continue;
                }
                std::net::IpAddr::V6(ip)
            } else {
                continue;
            };
            if !out.contains(&ip) {
                out.push(ip);
            }
        }
    }
    out
}

/// Everything the parent does before its event loop, in the order that lets errors reach the
/// terminal: configuration check, pid check, sockets, then daemonize, then the pid file.
/// Returns the process exit status.
pub fn main(opts: Options, args: Vec<String>) -> i32 {
    log::init(
        if opts.foreground {
            log::Target::Stderr
        } else {
            log::Target::Syslog
        },
        opts.verbose,
        &opts.debug,
    );
    let complain = |msg: &str| {
        log::error(msg);
        if !opts.foreground {
            eprintln!("isakmpd: {msg}");
        }
    };
    let mut loaded = match crate::config::load(&opts.config) {
        Ok(l) => l,
        Err(e) => {
            complain(&e);
            return 1;
        }
    };
    if let Err(e) = PidFile::check(&opts.pidfile) {
        complain(&e.to_string());
        return e.exit_status();
    }
    // After the pid check (a second instance must not flush the running one's SAs), try
    // the kernel now, while errors still reach the terminal; this also removes what an
    // earlier run left. The event loop opens its own sockets after daemonizing.
    if !opts.no_kernel {
        if let Err(e) = probe_kernel(opts.no_flows) {
            complain(&format!(
                "{e} (run with -n to negotiate without installing SAs)"
            ));
            return 1;
        }
    }
    // Per-address sockets need a fixed port: with `-p 0` the kernel would choose a different
    // port for each, so the wildcard addresses are bound instead.
    let addresses = if opts.port == 0 || opts.natt_port == 0 {
        Vec::new()
    } else if loaded.policy.general.listen_on.is_empty() {
        interface_addresses()
    } else {
        loaded.policy.general.listen_on.clone()
    };
    loaded.child.local_addresses = addresses.clone();
    let sockets = match bind_addresses(&opts, &addresses) {
        Ok(s) => s,
        Err(e) => {
            complain(&format!("cannot bind: {e}"));
            return 1;
        }
    };
    if !opts.no_kernel {
        if let Err(e) = prepare_for_ipsec(&sockets) {
            complain(&e);
            return 1;
        }
    }
    for b in &sockets {
        log::info(&format!(
            "listening on {}{}",
            b.info.local,
            if b.info.natt { " (NAT-T)" } else { "" }
        ));
    }
    if !opts.foreground {
        if let Err(e) = crate::daemon::daemonize() {
            complain(&format!("daemonize: {e}"));
            return 1;
        }
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            log::error(&format!("runtime: {e}"));
            return 1;
        }
    };
    // Signals before the pid file: once the pid file says we run, SIGTERM must reach the
    // clean shutdown, never the default action, which would leave the pid file behind.
    let signals = {
        let _in_runtime = rt.enter();
        match Signals::install() {
            Ok(s) => s,
            Err(e) => {
                log::error(&format!("cannot install signal handlers: {e}"));
                return 1;
            }
        }
    };
    let pidfile = match PidFile::create(&opts.pidfile) {
        Ok(p) => p,
        Err(e) => {
            log::error(&e.to_string());
            return e.exit_status();
        }
    };
    let fifo = match crate::fifo_file::open_fifo(&opts.fifo) {
        Ok(f) => f,
        Err(e) => {
            log::error(&e);
            return 1;
        }
    };
    let helpers = opts.helper_count();
    let status = rt.block_on(run(&opts, loaded, sockets, helpers, &fifo, args, signals));
    drop(pidfile);
    status
}

/// IKE itself must never go through IPsec (a host-to-host policy would cover it), and ESP in
/// UDP arriving on the NAT-T sockets is the kernel's.
fn prepare_for_ipsec(sockets: &[Bound]) -> Result<(), String> {
    for b in sockets {
        crate::sys::set_socket_bypass(b.socket.as_fd(), b.info.local.is_ipv6())
            .map_err(|e| format!("IPsec bypass policy on {}: {e}", b.info.local))?;
        if b.info.natt {
            crate::sys::set_udp_encap_espinudp(b.socket.as_fd())
                .map_err(|e| format!("UDP_ENCAP_ESPINUDP on {}: {e}", b.info.local))?;
        }
    }
    Ok(())
}

/// Open the kernel's SA database once in a throw-away runtime and remove what an earlier
/// run left (see `main`; the event loop's own sockets need not flush again).
fn probe_kernel(no_flows: bool) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    rt.block_on(async {
        Sadb::open(false, !no_flows)
            .await?
            .flush("left by an earlier run")
            .await
    })
}

struct RunningChild {
    process: Child,
    channel: AsyncChannel,
}

/// Helpers are this program re-executed with the helper role; the parent sends each its
/// secrets (pre-shared keys, private keys) and passes the other end to the child.
pub type Helpers = ExecSpawner<Secrets>;

fn helper_spawner(args: &[String], secrets: Secrets) -> Helpers {
    ExecSpawner::new("/proc/self/exe", args.to_vec(), secrets)
        .env(crate::ROLE_ENV, "helper")
        .arg0("isakmpd: helper")
}

/// Start the child: re-execute this program with the child role, its socketpair end as
/// descriptor `CHILD_FD`, and hand it the sockets and `n` fresh helpers.
async fn start_child(
    sockets: &[Bound],
    helpers: &mut Helpers,
    n: usize,
    args: &[String],
    loaded: &Loaded,
    fifo: &OwnedFd,
    capture: bool,
) -> std::io::Result<RunningChild> {
    let mut helper_fds = Vec::with_capacity(n);
    for _ in 0..n {
        helper_fds.push(helpers.spawn_blocking()?);
    }
    let (ours, theirs) = ipc::socketpair()?;
    let mut cmd = Command::new("/proc/self/exe");
    cmd.args(args).env(crate::ROLE_ENV, "child");
    std::os::unix::process::CommandExt::arg0(&mut cmd, "isakmpd: child");
    ipc::pass_fd_at_exec(&mut cmd, theirs.as_fd(), crate::CHILD_FD);
    let process = cmd.spawn()?;
    drop(theirs);
    let channel = AsyncChannel::new(ours)?;
    let infos: Vec<SocketInfo> = sockets.iter().map(|b| b.info.clone()).collect();
    let mut fds: Vec<BorrowedFd<'_>> = sockets.iter().map(|b| b.socket.as_fd()).collect();
    fds.extend(helper_fds.iter().map(|f| f.as_fd()));
    let start = ToChild::Start {
        sockets: infos,
        helpers: n,
    };
    let io = |e: IpcError| std::io::Error::other(e.to_string());
    channel.send_with_fds(&start, &fds).await.map_err(io)?;
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
    channel
        .send_with_fds(&ToChild::Fifo, &[fifo.as_fd()])
        .await
        .map_err(io)?;
    log::debug(
        crate::cmdline::DebugClass::Misc,
        10,
        &format!("started child {}", process.id()),
    );
    Ok(process).map(|process| RunningChild { process, channel })
}

/// The signals the parent acts on, installed (inside the runtime) before the pid file is
/// written.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
    usr1: tokio::signal::unix::Signal,
    chld: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> std::io::Result<Signals> {
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

async fn run(
    opts: &Options,
    mut loaded: Loaded,
    sockets: Vec<Bound>,
    n_helpers: usize,
    fifo: &OwnedFd,
    args: Vec<String>,
    signals: Signals,
) -> i32 {
    let mut helpers = helper_spawner(&args, loaded.secrets.clone());
    let Signals {
        mut term,
        mut int,
        mut hup,
        mut usr1,
        mut chld,
    } = signals;
    let mut sadb = match Sadb::open(opts.no_kernel, !opts.no_flows).await {
        Ok(k) => k,
        Err(e) => {
            log::error(&e);
            return 1;
        }
    };
    let mut child: Option<RunningChild> = None;
    // -L / -l: capture from the start.
    let mut capture: Option<Capture> = None;
    if let Some(path) = &opts.packet_log {
        capture = open_capture(path, opts);
    }
    let mut last_start: Option<tokio::time::Instant> = None;
    loop {
        if child.is_none() {
            if let Some(t) = last_start {
                // A new child knows nothing of the old one's SAs: it starts from a clean
                // kernel, and its peers hear INITIAL-CONTACT.
                if let Err(e) = sadb.flush("left by the previous child").await {
                    log::error(&e);
                }
                tokio::time::sleep_until(t + RESTART_DELAY).await;
            }
            last_start = Some(tokio::time::Instant::now());
            match start_child(
                &sockets,
                &mut helpers,
                n_helpers,
                &args,
                &loaded,
                fifo,
                capture.is_some(),
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
        tokio::select! {
            _ = term.recv() => return shutdown(child, &loaded, &sadb).await,
            _ = int.recv() => return shutdown(child, &loaded, &sadb).await,
            event = sadb.next_event() => {
                if let Err(e) = c.channel.send(&ToChild::Kernel(event)).await {
                    log::warning(&format!("child channel: {e}"));
                }
            }
            _ = hup.recv() => {
                log::info("SIGHUP: reloading the configuration");
                match crate::config::load(&opts.config) {
                    Err(e) => log::error(&format!("reload refused, keeping the running configuration: {e}")),
                    Ok(new) => {
                        if adopt(new, &mut loaded, c, &mut helpers, &args).await {
                            child = None;
                        }
                    }
                }
            }
            _ = usr1.recv() => {
                let _ = c.channel.send(&ToChild::Report).await;
            }
            _ = chld.recv() => {
                helpers.pids(); // reaps helpers that exited
                if let Ok(Some(status)) = c.process.try_wait() {
                    log::warning(&format!("child {} exited ({status}), restarting", c.process.id()));
                    child = None;
                }
            }
            m = c.channel.recv::<ToParent>() => match m {
                Ok(ToParent::Ready) => log::debug(crate::cmdline::DebugClass::Misc, 10, "child ready"),
                Ok(ToParent::Report(mut text)) => {
                    if let Some(counters) = sadb.counters().await {
                        text.push_str(&crate::sadb::render_counters(&counters));
                    }
                    write_run_file(&opts.report, &text, "report");
                }
                Ok(ToParent::Packet { from, to, bytes }) => {
                    if let Some(w) = capture.as_mut() {
                        if let Err(e) = w.record(std::time::SystemTime::now(), from, to, &bytes) {
                            log::error(&format!("packet capture stopped: {e}"));
                            capture = None;
                            let _ = c.channel.send(&ToChild::Capture(false)).await;
                        }
                    }
                }
                Ok(ToParent::Fifo(cmd)) => match cmd {
                    ParentCommand::Capture(fifo::PacketCapture::On(path)) => {
                        let path = path.or_else(|| opts.packet_log.clone()).unwrap_or_else(|| crate::cmdline::DEFAULT_PCAP.into());
                        capture = open_capture(&path, opts);
                        let _ = c.channel.send(&ToChild::Capture(capture.is_some())).await;
                    }
                    ParentCommand::Capture(fifo::PacketCapture::Off) => {
                        if let Some(mut w) = capture.take() {
                            let _ = w.flush();
                            log::info("packet capture off");
                        }
                        let _ = c.channel.send(&ToChild::Capture(false)).await;
                    }
                    ParentCommand::Quit => return shutdown(child, &loaded, &sadb).await,
                    ParentCommand::Reload => {
                        log::info("FIFO R: reloading the configuration (FIFO changes are discarded)");
                        match crate::config::load(&opts.config) {
                            Err(e) => log::error(&format!("reload refused, keeping the running configuration: {e}")),
                            Ok(new) => {
                                if adopt(new, &mut loaded, c, &mut helpers, &args).await {
                                    child = None;
                                }
                            }
                        }
                    }
                    ParentCommand::Debug(setting) => crate::commands::apply_debug(setting),
                    ParentCommand::Result(text) => write_run_file(&result_path(opts), &text, "result"),
                    ParentCommand::Config(op) => match config_op(&loaded, op, opts) {
                        Err(e) => log::warning(&format!("FIFO C: {e}; the configuration is unchanged")),
                        Ok(None) => {}
                        Ok(Some(new)) => {
                            if adopt(new, &mut loaded, c, &mut helpers, &args).await {
                                child = None;
                            }
                        }
                    },
                },
                Ok(ToParent::Updown(r)) => {
                    if let Some(script) = updown_script(&loaded, &r.connection) {
                        std::thread::spawn(move || crate::updown::run(&script, &r));
                    }
                }
                Ok(ToParent::Kernel { id, request }) => serve_kernel(&loaded, &sadb, c, id, &request).await,
                Ok(ToParent::NewHelper) => {
                    let live = helpers.pids().len();
                    let reply = if live >= n_helpers {
                        log::warning(&format!("child asked for a helper with {live} alive; refused"));
                        c.channel.send(&ToChild::NoHelper).await
                    } else {
                        match helpers.spawn_blocking() {
                            Ok(fd) => {
                                log::debug(crate::cmdline::DebugClass::Misc, 10, "started a replacement helper");
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
                Err(IpcError::Closed) | Err(IpcError::Truncated { .. }) => {
                    // The child is gone or going: reap it and start another.
                    let _ = c.process.kill();
                    let status = c.process.wait();
                    let how = match status {
                        Ok(s) => s.to_string(),
                        Err(e) => e.to_string(),
                    };
                    log::warning(&format!("child {} died ({how}), restarting", c.process.id()));
                    child = None;
                }
                Err(e) => {
                    // The child talks nonsense: it is not to be trusted any more.
                    log::error(&format!("child {}: {e}; killing it", c.process.id()));
                    let _ = c.process.kill();
                    let _ = c.process.wait();
                    child = None;
                }
            },
        }
    }
}

/// One kernel request of the child: checked by the monitor, then carried out; the child
/// hears the answer, if there is one.
async fn serve_kernel(
    loaded: &Loaded,
    sadb: &Sadb,
    c: &RunningChild,
    id: ike::engine::RequestId,
    request: &ike::engine::KernelRequest,
) {
    let answer = match crate::monitor::check(&loaded.policy, request) {
        Err(reason) => {
            log::warning(&format!(
                "refused the child's kernel request ({}): {reason}",
                crate::monitor::describe(request)
            ));
            Some(ike::engine::KernelEvent::Failed { id, reason })
        }
        Ok(()) => {
            log::debug(
                crate::cmdline::DebugClass::Sysdep,
                10,
                &crate::monitor::describe(request),
            );
            sadb.answer(id, request).await
        }
    };
    if let Some(a) = answer {
        if let Err(e) = c.channel.send(&ToChild::Kernel(a)).await {
            log::warning(&format!("child channel: {e}"));
        }
    }
}

/// Write the child's report to the `-R` file: only under /var/run, replaced atomically,
/// mode 0600 (it names peers, SPIs and the configuration).
fn write_run_file(path: &std::path::Path, text: &str, what: &str) {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt;
    let path = match crate::files::run_path(path) {
        Ok(p) => p,
        Err(e) => return log::error(&format!("{what}: {e}")),
    };
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .and_then(|()| std::fs::rename(&tmp, &path));
    match written {
        Ok(()) => log::info(&format!("{what} written to {}", path.display())),
        Err(e) => log::error(&format!("{what} {}: {e}", path.display())),
    }
}

/// The packet capture file being written.
type Capture = crate::pcap::PcapWriter<std::fs::File>;

/// Open a capture file (only under /var/run, mode 0600: it holds decrypted IKE messages).
fn open_capture(path: &std::path::Path, opts: &Options) -> Option<Capture> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = match crate::files::run_path(path) {
        Ok(p) => p,
        Err(e) => {
            log::error(&format!("packet capture: {e}"));
            return None;
        }
    };
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path);
    match file.and_then(crate::pcap::PcapWriter::new) {
        Ok(mut w) => {
            w.set_natt_port(opts.natt_port);
            log::info(&format!("packet capture to {}", path.display()));
            Some(w)
        }
        Err(e) => {
            log::error(&format!("packet capture {}: {e}", path.display()));
            None
        }
    }
}

/// The result file of `C get` and `S`: isakmpd.result beside the report file (so the
/// default is isakmpd's /var/run/isakmpd.result).
fn result_path(opts: &Options) -> std::path::PathBuf {
    opts.report.with_file_name("isakmpd.result")
}

/// Take a new configuration: the child gets it at once, unless the secrets changed, which
/// needs new helpers and so a new child (returns true: the caller forgets the old child).
async fn adopt(
    mut new: Loaded,
    loaded: &mut Loaded,
    c: &mut RunningChild,
    helpers: &mut Helpers,
    args: &[String],
) -> bool {
    new.child.local_addresses = loaded.child.local_addresses.clone();
    let restart = new.secrets != loaded.secrets;
    if restart {
        // Helpers hold the secrets from their start. Kernel state stays as it is.
        log::info("secrets changed: restarting the child and its helpers");
        *helpers = helper_spawner(args, new.secrets.clone());
        let _ = c.process.kill();
        let _ = c.process.wait();
    } else if let Err(e) = c.channel.send(&ToChild::Config(new.child.clone())).await {
        log::warning(&format!("child channel: {e}"));
    }
    *loaded = new;
    restart
}

/// A FIFO `C` operation on the running configuration, as one transaction. `get` writes the
/// value to the result file and changes nothing (`Ok(None)`); a change that does not build a
/// valid policy is refused as a whole.
fn config_op(
    loaded: &Loaded,
    op: fifo::ConfigOp,
    opts: &Options,
) -> Result<Option<Loaded>, String> {
    use fifo::ConfigOp;
    if let ConfigOp::Get { section, tag } = &op {
        let value = loaded.conf.get_str(section, tag).unwrap_or("");
        write_run_file(&result_path(opts), &format!("{value}\n"), "result");
        return Ok(None);
    }
    let mut conf = loaded.conf.clone();
    let t = conf.begin();
    let applied = match op {
        ConfigOp::Set {
            section,
            tag,
            value,
            force,
        } => conf.set(t, &section, &tag, &value, force, false),
        ConfigOp::Add {
            section,
            tag,
            value,
        } => conf.add(t, &section, &tag, &value),
        ConfigOp::Rmv {
            section,
            tag,
            value,
        } => conf.rmv(t, &section, &tag, &value),
        ConfigOp::Rm { section, tag } => conf.remove(t, &section, &tag),
        ConfigOp::Rms { section } => conf.remove_section(t, &section),
        ConfigOp::Get { .. } => Ok(()),
    };
    let ended = applied.and_then(|()| conf.end(t, true));
    ended.map_err(|e| e.reason)?;
    crate::config::from_conf(conf, &opts.config).map(Some)
}

/// The configured updown script of `connection`, if any; the connection must be one of ours.
fn updown_script(loaded: &Loaded, connection: &str) -> Option<String> {
    loaded
        .updown
        .iter()
        .find(|(c, _)| c == connection)
        .map(|(_, s)| s.clone())
}

/// SIGTERM: the child deletes its SAs (telling the peers unless -S) and exits. Until it
/// has, its messages are still served, so that its deletes reach the kernel and `down`
/// scripts run before we exit. Whatever of ours is still in the kernel then goes too.
async fn shutdown(child: Option<RunningChild>, loaded: &Loaded, sadb: &Sadb) -> i32 {
    log::info("shutting down");
    if let Some(mut c) = child {
        let _ = c.channel.send(&ToChild::Shutdown).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let mut scripts = Vec::new();
        loop {
            tokio::select! {
                m = c.channel.recv::<ToParent>() => match m {
                    Ok(ToParent::Updown(r)) => {
                        if let Some(script) = updown_script(loaded, &r.connection) {
                            scripts.push(std::thread::spawn(move || crate::updown::run(&script, &r)));
                        }
                    }
                    Ok(ToParent::Kernel { id, request }) => serve_kernel(loaded, sadb, &c, id, &request).await,
                    Ok(_) => {}
                    Err(_) => break,
                },
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
        for s in scripts {
            let _ = s.join();
        }
        let exited = matches!(c.process.try_wait(), Ok(Some(_)));
        if !exited {
            let _ = c.process.kill();
        }
        let _ = c.process.wait();
    }
    if let Err(e) = sadb.flush("at shutdown").await {
        log::error(&e);
        return 1;
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn binds_both_families_with_v6only() {
        let o = crate::cmdline::parse(["-p", "0", "-N", "0"]).expect("parse");
        let b = bind_sockets(&o).expect("bind");
        assert_eq!(b.len(), 4);
        assert_eq!(b.iter().filter(|s| s.info.natt).count(), 2);
        for s in &b {
            assert_eq!(s.info.local, s.socket.local_addr().expect("addr"));
            assert!(s.info.local.ip().is_unspecified());
            if s.info.local.is_ipv6() {
                let v6only = nix::sys::socket::getsockopt(&s.socket, sockopt::Ipv6V6Only)
                    .expect("getsockopt");
                assert!(v6only);
            }
            assert!(s.socket.as_raw_fd() > 2);
        }
    }

    #[test]
    fn family_and_natt_flags_restrict() {
        let o = crate::cmdline::parse(["-4", "-p", "0", "-N", "0"]).expect("parse");
        let b = bind_sockets(&o).expect("bind");
        assert_eq!(b.len(), 2);
        assert!(b.iter().all(|s| s.info.local.is_ipv4()));
        let o = crate::cmdline::parse(["-6", "-T", "-p", "0"]).expect("parse");
        let b = bind_sockets(&o).expect("bind");
        assert_eq!(b.len(), 1);
        assert!(b[0].info.local.is_ipv6() && !b[0].info.natt);
    }

    #[test]
    fn bound_socket_receives() {
        let o = crate::cmdline::parse(["-4", "-T", "-p", "0"]).expect("parse");
        let b = bind_sockets(&o).expect("bind");
        let port = b[0].info.local.port();
        let tx = UdpSocket::bind("127.0.0.1:0").expect("bind");
        tx.send_to(b"hdr", ("127.0.0.1", port)).expect("send");
        let mut buf = [0u8; 8];
        let (n, _) = b[0].socket.recv_from(&mut buf).expect("recv");
        assert_eq!(&buf[..n], b"hdr");
    }
}
