//! XFRM multicast events (ACQUIRE, EXPIRE, MAPPING) as [`XfrmEvent`]s.
//!
//! Events arrive on a netlink socket of their own, so requests on [`crate::Xfrm`] never
//! queue behind unread events. Only events about what we own are passed on: EXPIRE and
//! MAPPING of SAs whose reqid is in [`crate::OWNED_REQIDS`], ACQUIRE of policies whose
//! template reqid is in that range.

use crate::error::{KernelError, Op};
use crate::types::{IpsecProtocol, XfrmEvent};
use crate::xfrm::OWNED_REQIDS;
use futures::channel::mpsc::UnboundedReceiver;
use futures::StreamExt;
use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
use netlink_packet_xfrm::{
    Address, XfrmAttrs, XfrmMessage, XFRMNLGRP_ACQUIRE, XFRMNLGRP_EXPIRE, XFRMNLGRP_MAPPING,
};
use netlink_sys::AsyncSocket;
use std::net::{IpAddr, SocketAddr};

/// A subscription to the kernel's XFRM events.
pub struct XfrmEvents {
    messages: UnboundedReceiver<(NetlinkMessage<XfrmMessage>, netlink_sys::SocketAddr)>,
}

impl XfrmEvents {
    /// Opens a NETLINK_XFRM socket joined to the acquire, expire and mapping groups. Call it
    /// inside a tokio runtime.
    pub fn open() -> Result<XfrmEvents, KernelError> {
        let subject = "XFRM event groups";
        crate::error::need_runtime(subject)?;
        let (mut conn, _handle, messages) = xfrmnetlink::new_connection()
            .map_err(|e| KernelError::other(Op::Open, subject, e.to_string()))?;
        // The kernel multicasts with port id 0 and skips sockets whose port id is 0, i.e.
        // sockets never bound: bind first (a socket that only listens never autobinds).
        conn.socket_mut()
            .socket_mut()
            .bind_auto()
            .map_err(|e| KernelError::other(Op::Subscribe, subject, e.to_string()))?;
        for group in [XFRMNLGRP_ACQUIRE, XFRMNLGRP_EXPIRE, XFRMNLGRP_MAPPING] {
            conn.socket_mut()
                .socket_mut()
                .add_membership(group)
                .map_err(|e| match e.raw_os_error() {
                    Some(errno) => KernelError::errno(Op::Subscribe, subject, errno),
                    None => KernelError::other(Op::Subscribe, subject, e.to_string()),
                })?;
        }
        tokio::spawn(conn);
        Ok(XfrmEvents { messages })
    }

    /// The next event about our SAs and policies; `None` when the socket is gone.
    pub async fn next(&mut self) -> Option<XfrmEvent> {
        while let Some((msg, _)) = self.messages.next().await {
            if let NetlinkPayload::InnerMessage(m) = msg.payload {
                if let Some(ev) = translate(&m) {
                    return Some(ev);
                }
            }
        }
        None
    }
}

fn addr(a: &Address, family: u16) -> Option<IpAddr> {
    match i32::from(family) {
        libc::AF_INET => Some(IpAddr::V4(a.to_ipv4())),
        libc::AF_INET6 => Some(IpAddr::V6(a.to_ipv6())),
        _ => None,
    }
}

fn protocol(p: u8) -> Option<IpsecProtocol> {
    match i32::from(p) {
        libc::IPPROTO_ESP => Some(IpsecProtocol::Esp),
        libc::IPPROTO_AH => Some(IpsecProtocol::Ah),
        _ => None,
    }
}

/// One XFRM message as an event, if it is an event about something of ours.
pub fn translate(m: &XfrmMessage) -> Option<XfrmEvent> {
    match m {
        XfrmMessage::Acquire(a) => {
            let ours = a.nlas.iter().any(|n| match n {
                XfrmAttrs::Template(ts) => ts.iter().any(|t| OWNED_REQIDS.contains(&t.reqid)),
                _ => false,
            });
            if !ours {
                return None;
            }
            let sel = &a.acquire.selector;
            Some(XfrmEvent::Acquire {
                local: addr(&sel.saddr, sel.family)?,
                remote: addr(&sel.daddr, sel.family)?,
                protocol: sel.proto,
            })
        }
        XfrmMessage::Expire(e) => {
            let st = &e.expire.state;
            if !OWNED_REQIDS.contains(&st.reqid) {
                return None;
            }
            Some(XfrmEvent::Expire {
                protocol: protocol(st.id.proto)?,
                spi: st.id.spi,
                dst: addr(&st.id.daddr, st.family)?,
                hard: e.expire.hard != 0,
            })
        }
        XfrmMessage::Mapping(mp) => {
            let m = &mp.map;
            if !OWNED_REQIDS.contains(&m.reqid) {
                return None;
            }
            let family = m.id.family;
            Some(XfrmEvent::Mapping {
                old: SocketAddr::new(addr(&m.old_saddr, family)?, m.old_sport),
                new: SocketAddr::new(addr(&m.new_saddr, family)?, m.new_sport),
            })
        }
        _ => None,
    }
}
