//! Carrying out [`XfrmRequest`]s: against XFRM, or against nothing (`-n`).

use crate::error::KernelError;
use crate::types::{Outcome, XfrmRequest};
use crate::xfrm::{Xfrm, SPI_RANGE};
use std::collections::HashSet;
use std::sync::atomic::{AtomicU32, Ordering};

/// What a request produced: an SPI for `AllocSpi`, nothing for the others.
pub type Applied = Option<u32>;

impl Xfrm {
    /// Carries out one request. Policies are installed in every direction the mode needs.
    pub async fn apply(&self, request: &XfrmRequest) -> Result<Applied, KernelError> {
        match request {
            XfrmRequest::AllocSpi { protocol, src, dst } => {
                self.alloc_spi(*protocol, *src, *dst, None).await.map(Some)
            }
            XfrmRequest::AddSa(spec) => self.add_sa(spec).await.map(|()| None),
            XfrmRequest::DeleteSa {
                protocol,
                spi,
                src,
                dst,
            } => match self.delete_sa(*protocol, *spi, *src, *dst).await {
                // Already gone (expired, or flushed): what was asked is true.
                Err(e) if e.is_not_found() => Ok(None),
                r => r.map(|()| None),
            },
            XfrmRequest::AddPolicy(spec) => self.add_policies(spec).await.map(|()| None),
            XfrmRequest::DeletePolicy(spec) => self.delete_policies(spec).await.map(|()| None),
        }
    }

    /// Carries out one request and says what the caller must hear: `SpiAllocated`, or
    /// `Failed` with the one-line reason (also the line to log), or nothing.
    pub async fn answer(&self, request: &XfrmRequest) -> Option<Outcome> {
        answer(request, self.apply(request).await)
    }
}

/// `SpiAllocated` for an SPI, `Installed` for an SA (the caller may wait for it), nothing
/// for the other successes, `Failed` with the reason otherwise.
fn answer(request: &XfrmRequest, result: Result<Applied, KernelError>) -> Option<Outcome> {
    match result {
        Ok(Some(spi)) => Some(Outcome::SpiAllocated(spi)),
        Ok(None) if matches!(request, XfrmRequest::AddSa(_)) => Some(Outcome::Installed),
        Ok(None) => None,
        Err(e) => Some(Outcome::Failed(e.to_string())),
    }
}

/// The backend of `-n`: nothing reaches the kernel; SPIs are handed out from a counter
/// inside [`SPI_RANGE`] and every other request succeeds.
#[derive(Debug)]
pub struct NoKernel {
    next_spi: AtomicU32,
}

impl NoKernel {
    /// `seed` picks where the SPI counter starts (e.g. from the time), so two runs or two
    /// daemons rarely hand out the same SPIs.
    pub fn new(seed: u32) -> NoKernel {
        let span = SPI_RANGE.end() - SPI_RANGE.start();
        NoKernel {
            next_spi: AtomicU32::new(SPI_RANGE.start() + seed % span),
        }
    }

    pub fn apply(&self, request: &XfrmRequest) -> Applied {
        match request {
            XfrmRequest::AllocSpi { .. } => Some(self.spi()),
            _ => None,
        }
    }

    pub fn answer(&self, request: &XfrmRequest) -> Option<Outcome> {
        answer(request, Ok(self.apply(request)))
    }

    fn spi(&self) -> u32 {
        let spi = self.next_spi.fetch_add(1, Ordering::Relaxed);
        if SPI_RANGE.contains(&spi) {
            spi
        } else {
            // Wrapped: start again at the bottom of the range.
            self.next_spi
                .store(SPI_RANGE.start() + 1, Ordering::Relaxed);
            *SPI_RANGE.start()
        }
    }
}

/// SPIs handed out are distinct (a property the tests check on both backends).
pub fn distinct(spis: &[u32]) -> bool {
    spis.iter().collect::<HashSet<_>>().len() == spis.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::IpsecProtocol;

    #[test]
    fn no_kernel_hands_out_distinct_spis_in_range_even_across_the_wrap() {
        let k = NoKernel::new(0xffff_fffb - 0x1000);
        let req = XfrmRequest::AllocSpi {
            protocol: IpsecProtocol::Esp,
            src: "192.0.2.2".parse().unwrap(),
            dst: "192.0.2.1".parse().unwrap(),
        };
        let spis: Vec<u32> = (0..10).map(|_| k.apply(&req).unwrap()).collect();
        assert!(spis.iter().all(|s| SPI_RANGE.contains(s)), "{spis:x?}");
        assert!(distinct(&spis), "{spis:x?}");
        assert_eq!(spis[0], 0xffff_fffb);
        assert_eq!(spis[5], 0x1000);
        assert_eq!(k.answer(&req), Some(Outcome::SpiAllocated(spis[9] + 1)));
    }

    #[test]
    fn failures_become_failed_events_with_the_log_line() {
        let e = KernelError::errno(
            crate::Op::AddSa,
            "ESP SA 0x1234abcd 192.0.2.1 -> 192.0.2.2",
            93,
        );
        let line = e.to_string();
        let delete = XfrmRequest::DeleteSa {
            protocol: IpsecProtocol::Esp,
            spi: 0x1234abcd,
            src: "192.0.2.1".parse().unwrap(),
            dst: "192.0.2.2".parse().unwrap(),
        };
        assert_eq!(answer(&delete, Err(e)), Some(Outcome::Failed(line)));
        assert_eq!(answer(&delete, Ok(None)), None);
    }
}
