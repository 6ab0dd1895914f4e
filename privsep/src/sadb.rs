//! The kernel's SA database as the parent uses it: the child's checked requests carried out
//! in XFRM (or nowhere, with `-n`), XFRM's events for the child, and our leftovers removed.

use crate::{kernel_map, log};
use ike::engine::{KernelEvent, KernelRequest, RequestId};
use kernel::{KernelError, KernelSa, NoKernel, Xfrm, XfrmEvents};
use std::fmt;

/// Why the SA database could not be opened.
#[derive(Debug)]
pub enum SadbError {
    /// `-n`: no random start for the SPI counter.
    Randomness(openssl::error::ErrorStack),
    /// The XFRM sockets.
    Kernel(KernelError),
}

impl fmt::Display for SadbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SadbError::Randomness(e) => write!(f, "randomness: {e}"),
            SadbError::Kernel(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for SadbError {}

/// Where the child's SAs and policies go.
pub enum Sadb {
    /// `-n`: nowhere; SPIs come from a counter.
    Absent(NoKernel),
    Xfrm {
        xfrm: Xfrm,
        /// `None` once the event socket has failed (logged once).
        events: Option<XfrmEvents>,
        /// `-a`: SAs only, no policies (isakmpd's "no flows").
        flows: bool,
    },
}

impl Sadb {
    /// With `-n`, nothing; otherwise the XFRM sockets (inside a tokio runtime). What an
    /// earlier run left is the caller's to `flush` (once, at start).
    pub async fn open(no_kernel: bool, flows: bool) -> Result<Sadb, SadbError> {
        if no_kernel {
            let mut seed = [0u8; 4];
            openssl::rand::rand_bytes(&mut seed).map_err(SadbError::Randomness)?;
            return Ok(Sadb::Absent(NoKernel::new(u32::from_be_bytes(seed))));
        }
        let xfrm = Xfrm::open().map_err(SadbError::Kernel)?;
        let events = XfrmEvents::open().map_err(SadbError::Kernel)?;
        Ok(Sadb::Xfrm {
            xfrm,
            events: Some(events),
            flows,
        })
    }

    /// Remove every SA and policy of ours (reqids 0x4000-0x7fff), saying how many there were.
    pub async fn flush(&self, why: &str) -> Result<(), KernelError> {
        let Sadb::Xfrm { xfrm, .. } = self else {
            return Ok(());
        };
        let f = xfrm.flush_ours().await?;
        if f.sas + f.policies > 0 {
            log::info(&format!(
                "removed {} SAs and {} policies of ours {why}",
                f.sas, f.policies
            ));
        }
        Ok(())
    }

    /// Carry out a request the monitor has allowed; the answer, if the child needs one. A
    /// kernel refusal comes back as `Failed` with the one-line reason, which the engine logs
    /// (once: not here as well).
    pub async fn answer(&self, id: RequestId, request: &KernelRequest) -> Option<KernelEvent> {
        let xfrm_request = kernel_map::request(request);
        let outcome = match self {
            Sadb::Absent(k) => k.answer(&xfrm_request),
            Sadb::Xfrm { xfrm, flows, .. } => {
                if !flows
                    && matches!(
                        request,
                        KernelRequest::AddPolicy(_) | KernelRequest::DeletePolicy(_)
                    )
                {
                    return None;
                }
                xfrm.answer(&xfrm_request).await
            }
        };
        outcome.map(|o| kernel_map::outcome(id, o))
    }

    /// The next ACQUIRE, EXPIRE or MAPPING event about our SAs and policies; never ready
    /// without a kernel or after the event socket has failed.
    pub async fn next_event(&mut self) -> KernelEvent {
        if let Sadb::Xfrm {
            events: ev @ Some(_),
            ..
        } = self
        {
            if let Some(e) = ev.as_mut() {
                if let Some(event) = e.next().await {
                    return kernel_map::event(event);
                }
            }
            log::error("XFRM event socket closed: ACQUIRE and EXPIRE are no longer seen");
            *ev = None;
        }
        std::future::pending().await
    }

    /// Our SAs with their traffic counters, for the report (`None` with `-n`).
    pub async fn counters(&self) -> Option<Result<Vec<KernelSa>, KernelError>> {
        match self {
            Sadb::Absent(_) => None,
            Sadb::Xfrm { xfrm, .. } => Some(xfrm.our_sas().await),
        }
    }
}

/// The report's kernel section: one line per SA of ours with bytes and packets.
pub fn render_counters(counters: &Result<Vec<KernelSa>, KernelError>) -> String {
    use std::fmt::Write as _;
    let mut r = String::new();
    match counters {
        Err(e) => {
            let _ = writeln!(r, "\nKernel SAs: cannot read them: {e}");
        }
        Ok(sas) => {
            let _ = writeln!(r, "\nKernel SAs (XFRM): {}", sas.len());
            for s in sas {
                let _ = writeln!(
                    r,
                    "  {} reqid {:#x}: {} bytes, {} packets",
                    kernel::sa_name(s.protocol, s.spi, s.src, s.dst),
                    s.reqid,
                    s.bytes,
                    s.packets
                );
            }
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use ike::policy::IpsecProtocol;

    #[test]
    fn counters_render_one_line_per_sa() {
        let sas = vec![KernelSa {
            protocol: kernel::IpsecProtocol::Esp,
            spi: 0x1234abcd,
            src: "192.0.2.1".parse().unwrap(),
            dst: "192.0.2.2".parse().unwrap(),
            reqid: 0x4001,
            bytes: 840,
            packets: 10,
        }];
        let text = render_counters(&Ok(sas));
        assert!(text.contains("Kernel SAs (XFRM): 1"), "{text}");
        assert!(
            text.contains(
                "ESP SA 0x1234abcd 192.0.2.1 -> 192.0.2.2 reqid 0x4001: 840 bytes, 10 packets"
            ),
            "{text}"
        );
        let refused = KernelError {
            op: kernel::Op::Dump,
            subject: "our SAs".into(),
            errno: Some(libc::EPERM),
            detail: String::new(),
        };
        let text = render_counters(&Err(refused.clone()));
        assert!(
            text.contains(&format!("Kernel SAs: cannot read them: {refused}")),
            "{text}"
        );
        assert!(text.contains("(EPERM"), "{text}");
    }

    #[test]
    fn without_kernel_spis_are_in_range_and_distinct() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let sadb = Sadb::open(true, true).await.unwrap();
            let req = KernelRequest::AllocSpi {
                protocol: IpsecProtocol::Esp,
                src: "192.0.2.2".parse().unwrap(),
                dst: "192.0.2.1".parse().unwrap(),
            };
            let mut spis = Vec::new();
            for i in 0..100 {
                match sadb.answer(RequestId(i), &req).await {
                    Some(KernelEvent::SpiAllocated { id, spi }) => {
                        assert_eq!(id, RequestId(i));
                        assert!(kernel::SPI_RANGE.contains(&spi));
                        spis.push(spi);
                    }
                    other => panic!("{other:?}"),
                }
            }
            assert!(kernel::distinct(&spis));
            assert!(sadb.counters().await.is_none());
        });
    }
}
