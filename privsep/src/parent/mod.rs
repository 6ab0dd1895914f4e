//! The privileged parent: checks the configuration file, binds the IKE sockets, starts the
//! unprivileged child with them (`run`), restarts it when it dies, reads the FIFO, turns
//! signals into messages, and carries out what the child may ask of it (`state`).

mod run;
pub mod state;

use crate::cmdline::Options;
use crate::files::PidFile;
use crate::log;
use crate::proto::SocketInfo;
use crate::sadb::{Sadb, SadbError};
use kernel::KernelError;
use nix::sys::socket::{
    bind, setsockopt, socket, sockopt, AddressFamily, SockFlag, SockType, SockaddrStorage,
};
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::AsFd;

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
    // No core file of ours ever holds a pre-shared key; the children inherit the limit.
    if let Err(e) = crate::privdrop::disable_core_dumps() {
        complain(&e.to_string());
        return 1;
    }
    let mut loaded = match crate::config::read(&opts.config) {
        Ok(l) => l,
        Err(e) => {
            complain(&e.to_string());
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
        crate::addresses::interface_addresses()
    } else {
        loaded.policy.general.listen_on.clone()
    };
    loaded.child.local_addresses = addresses.clone();
    loaded.child.no_natt = opts.no_natt;
    let sockets = match bind_addresses(&opts, &addresses) {
        Ok(s) => s,
        Err(e) => {
            complain(&format!("cannot bind: {e}"));
            return 1;
        }
    };
    if !opts.no_kernel {
        if let Err(e) = prepare_for_ipsec(&sockets) {
            complain(&e.to_string());
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
        match run::Signals::install() {
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
    let fifo = match crate::fifo_file::open(&opts.fifo) {
        Ok(f) => f,
        Err(e) => {
            log::error(&e.to_string());
            return 1;
        }
    };
    let helpers = opts.helper_count();
    let status = rt.block_on(run::run(
        opts, loaded, sockets, helpers, fifo, args, signals,
    ));
    drop(pidfile);
    status
}

/// Why an IKE socket could not be set up beside IPsec; each names the socket.
#[derive(Debug)]
pub enum SocketSetupError {
    Bypass(SocketAddr, std::io::Error),
    Encap(SocketAddr, std::io::Error),
}

impl fmt::Display for SocketSetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SocketSetupError::Bypass(a, e) => write!(f, "IPsec bypass policy on {a}: {e}"),
            SocketSetupError::Encap(a, e) => write!(f, "UDP_ENCAP_ESPINUDP on {a}: {e}"),
        }
    }
}

impl std::error::Error for SocketSetupError {}

/// Why the kernel could not be used at start.
#[derive(Debug)]
pub enum ProbeError {
    Runtime(std::io::Error),
    Open(SadbError),
    Flush(KernelError),
}

impl fmt::Display for ProbeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProbeError::Runtime(e) => write!(f, "runtime: {e}"),
            ProbeError::Open(e) => write!(f, "{e}"),
            ProbeError::Flush(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ProbeError {}

/// IKE itself must never go through IPsec (a host-to-host policy would cover it), and ESP in
/// UDP arriving on the NAT-T sockets is the kernel's.
fn prepare_for_ipsec(sockets: &[Bound]) -> Result<(), SocketSetupError> {
    for b in sockets {
        crate::sys::set_socket_bypass(b.socket.as_fd(), b.info.local.is_ipv6())
            .map_err(|e| SocketSetupError::Bypass(b.info.local, e))?;
        if b.info.natt {
            crate::sys::set_udp_encap_espinudp(b.socket.as_fd())
                .map_err(|e| SocketSetupError::Encap(b.info.local, e))?;
        }
    }
    Ok(())
}

/// Open the kernel's SA database once in a throw-away runtime and remove what an earlier
/// run left (see `main`; the event loop's own sockets need not flush again).
fn probe_kernel(no_flows: bool) -> Result<(), ProbeError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ProbeError::Runtime)?;
    rt.block_on(async {
        Sadb::open(false, !no_flows)
            .await
            .map_err(ProbeError::Open)?
            .flush("left by an earlier run")
            .await
            .map_err(ProbeError::Flush)
    })
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
    fn start_errors_read_as_before() {
        let a: SocketAddr = "192.0.2.1:4500".parse().expect("addr");
        let e = SocketSetupError::Encap(a, std::io::Error::from_raw_os_error(libc::ENOPROTOOPT));
        assert!(
            e.to_string()
                .starts_with("UDP_ENCAP_ESPINUDP on 192.0.2.1:4500: "),
            "{e}"
        );
        let e = SocketSetupError::Bypass(a, std::io::Error::other("no"));
        assert_eq!(e.to_string(), "IPsec bypass policy on 192.0.2.1:4500: no");
        let e = ProbeError::Runtime(std::io::Error::other("no"));
        assert_eq!(e.to_string(), "runtime: no");
        // A refused FIFO `C` operation shows the database's reason alone.
        let e = state::ConfigOpError::Refused(ike::conf::ConfError {
            line: 1,
            reason: "no such section".into(),
        });
        assert_eq!(e.to_string(), "no such section");
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
