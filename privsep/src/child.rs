//! The unprivileged child: takes the sockets from the parent, drops every privilege, then
//! reads datagrams. Every packet from the network is handled here and nowhere else.

use crate::cmdline::{DebugClass, Options};
use crate::ipc::{self, AsyncChannel, Channel, IpcError};
use crate::log;
use crate::privdrop::{self, DropConfig};
use crate::proto::{SocketInfo, ToChild, ToParent};
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use tokio::net::UdpSocket;

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
    let Some(fd) = ipc::take_inherited_fd(crate::CHILD_FD) else {
        log::error("child: no channel to the parent");
        return 1;
    };
    let mut ch = Channel::new(fd);
    let (infos, fds) = match ch.recv_with_fds::<ToChild>() {
        Ok((ToChild::Sockets(infos), fds)) if infos.len() == fds.len() => (infos, fds),
        Ok((m, fds)) => {
            log::error(&format!(
                "child: expected the sockets first, got {m:?} with {} descriptors",
                fds.len()
            ));
            return 1;
        }
        Err(e) => {
            log::error(&format!("child: {e}"));
            return 1;
        }
    };
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
    rt.block_on(run(ch, infos, fds))
}

async fn run(ch: Channel, infos: Vec<SocketInfo>, fds: Vec<OwnedFd>) -> i32 {
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
    if parent.send(&ToParent::Ready).await.is_err() {
        return 1;
    }
    loop {
        tokio::select! {
            m = parent.recv::<ToChild>() => match m {
                Ok(ToChild::Shutdown) => return 0,
                Ok(ToChild::Reload) => log::debug(DebugClass::Misc, 10, "reload requested"),
                Ok(ToChild::Report) => log::debug(DebugClass::Misc, 10, "report requested"),
                Ok(ToChild::Sockets(_)) => log::warning("child: sockets sent twice; ignored"),
                Err(IpcError::Closed) => return 0, // the parent is gone: so are we
                Err(e) => {
                    log::error(&format!("child: parent channel: {e}"));
                    return 1;
                }
            },
            d = rx.recv() => match d {
                Some((i, from, bytes)) => handle_datagram(&sockets[i].0, from, &bytes),
                None => return 1,
            },
        }
    }
}

/// The engine glue point. Every datagram received on any socket comes here. For now it is
/// only logged (length, at debug level); the sans-IO engine of the `ike` crate plugs in
/// here: `engine.handle_datagram(now, info.local, from, bytes)`, then drain its `Transmit`s
/// to `sockets`, its `Crypto` requests to the helper pool and its `Kernel` requests to the
/// parent.
pub fn handle_datagram(info: &SocketInfo, from: SocketAddr, bytes: &[u8]) {
    log::debug(
        DebugClass::Transport,
        1,
        &format!(
            "received {} bytes from {from} on {}{}",
            bytes.len(),
            info.local,
            if info.natt { " (NAT-T)" } else { "" }
        ),
    );
}
