//! The parent's reading of the child's IPC frames: each frame header checked as the
//! parent's channel does (`helpers::ipc::parse_header` with the parent's frame limit, no
//! descriptors allowed from the child), the payload decoded as a `ToParent` with
//! `helpers::ipc::decode_payload`, and every kernel request put through the monitor's
//! `check` against a fixed policy (the responder target's four peers), recorded in the
//! parent's table when approved as `privsep::authority` does, so that a sequence of frames
//! reaches deletes of installed SAs and policies.
//!
//! Invariant: a decoded message encodes back to a frame that decodes to the same message.

use crate::responder::{responder_policy, RESPONDER_IP};
use helpers::ipc::{decode_payload, encode_frame, parse_header, DEFAULT_MAX_FRAME, HEADER_LEN};
use ike::engine::KernelRequest;
use privsep::monitor;
use privsep::proto::ToParent;
use privsep::table::{SaKey, Table};
use std::net::IpAddr;
use std::time::{Duration, Instant};

pub fn ipc(mut data: &[u8]) {
    let policy = responder_policy();
    let mut table = Table::new();
    let start = crate::responder::epoch();
    let mut now = start;
    let mut spi = 0x1000u32;
    let mut ours = |a: IpAddr| a == IpAddr::V4(RESPONDER_IP);
    while data.len() >= HEADER_LEN {
        let (h, rest) = data.split_at(HEADER_LEN);
        let Ok(header) = <[u8; HEADER_LEN]>::try_from(h) else {
            return;
        };
        // The parent's channel: frames up to DEFAULT_MAX_FRAME, no descriptors from the child.
        let Ok((len, nfds)) = parse_header(&header, DEFAULT_MAX_FRAME) else {
            return;
        };
        if nfds != 0 || rest.len() < len {
            return;
        }
        let (payload, rest) = rest.split_at(len);
        data = rest;
        let Ok(msg) = decode_payload::<ToParent>(payload) else {
            continue;
        };
        let frame = encode_frame(&msg, 0, DEFAULT_MAX_FRAME);
        let Ok(frame) = frame else {
            panic!("a decoded message does not encode: {frame:?}");
        };
        let again = decode_payload::<ToParent>(frame.get(HEADER_LEN..).unwrap_or_default());
        assert_eq!(
            again.as_ref().ok(),
            Some(&msg),
            "re-encoded frame decodes differently"
        );
        let ToParent::Kernel { request, .. } = msg else {
            continue;
        };
        now += Duration::from_secs(1);
        table.expire_larval(now, Duration::from_secs(90));
        let Ok(approved) = monitor::check(policy, &mut table, &mut ours, &request) else {
            continue;
        };
        let _ = monitor::describe_request(&approved);
        record(&mut table, &approved, &mut spi, now);
    }
}

/// What the parent records of an approved request it carried out (a kernel that says yes).
fn record(table: &mut Table, approved: &KernelRequest, spi: &mut u32, now: Instant) {
    match approved {
        KernelRequest::AllocSpi { protocol, src, dst } => {
            *spi = spi.wrapping_add(1);
            let key = SaKey {
                protocol: *protocol,
                spi: *spi,
                dst: *dst,
            };
            table.record_larval(key, *src, now);
        }
        KernelRequest::AddSa(spec) => {
            let _ = table.record_sa(spec, true);
        }
        KernelRequest::DeleteSa {
            protocol,
            spi,
            src,
            dst,
        } => {
            let key = SaKey {
                protocol: *protocol,
                spi: *spi,
                dst: *dst,
            };
            let _ = table.remove_sa(&key, *src);
        }
        KernelRequest::AddPolicy(spec) => table.record_policy(spec),
        KernelRequest::DeletePolicy(spec) => {
            let _ = table.remove_policy(spec);
        }
    }
}
