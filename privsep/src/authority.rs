//! The parent carrying out the child's kernel requests: each checked by the monitor against
//! the parent's own policy and table, then carried out (in XFRM, or nowhere with `-n`) and
//! recorded in the table. What the table then says is due for updown scripts (a tunnel's
//! first SA pair in, its last SA out) is handed back to the caller to run.

use crate::addresses::LocalAddresses;
use crate::cmdline::DebugClass;
use crate::log;
use crate::sadb::Sadb;
use crate::table::{Removed, SaKey, Table};
use crate::updown;
use ike::engine::{KernelEvent, KernelRequest, RequestId};
use ike::policy::Policy;
use std::time::{Duration, Instant};

/// How long an allocated SPI stays usable for an inbound SA: the kernel's larval SA lives
/// 30 s (xfrm_acq_expires), after which the install adds the SA afresh; a Quick Mode may
/// take up to `Exchange-max-time`.
fn larval_max_age(policy: &Policy) -> Duration {
    Duration::from_secs(policy.general.exchange_max_time.max(30) + 30)
}

/// The outcome of one request.
#[derive(Debug, Default)]
pub struct Served {
    /// What the child hears, if anything.
    pub answer: Option<KernelEvent>,
    /// Updown runs now due.
    pub updown: Vec<updown::Request>,
}

#[derive(Debug)]
pub struct Authority {
    pub table: Table,
    pub addresses: LocalAddresses,
    /// Requests refused so far (for the report and tests).
    pub refused: u64,
}

impl Authority {
    pub fn new(policy: &Policy) -> Authority {
        Authority {
            table: Table::new(),
            addresses: LocalAddresses::new(&policy.general.listen_on),
            refused: 0,
        }
    }

    /// Check `request`, carry it out if allowed, record it.
    pub async fn serve(
        &mut self,
        policy: &Policy,
        sadb: &Sadb,
        id: RequestId,
        request: &KernelRequest,
    ) -> Served {
        let now = Instant::now();
        self.table.expire_larval(now, larval_max_age(policy));
        let addresses = &mut self.addresses;
        let checked = crate::monitor::check(
            policy,
            &mut self.table,
            &mut |a| addresses.is_ours(a),
            request,
        );
        let approved = match checked {
            Ok(a) => a,
            Err(reason) => {
                self.refused += 1;
                log::limited(
                    "refused kernel requests of the child",
                    log::Level::Warning,
                    &format!("refused the child's kernel request: {reason}"),
                );
                return Served {
                    answer: Some(KernelEvent::Failed {
                        id,
                        reason: format!("refused by the parent: {reason}"),
                    }),
                    updown: Vec::new(),
                };
            }
        };
        log::debug(
            DebugClass::Sysdep,
            10,
            &crate::monitor::describe_request(&approved),
        );
        let mut served = Served::default();
        match &approved {
            KernelRequest::AllocSpi { protocol, src, dst } => {
                served.answer = sadb.answer(id, &approved).await;
                if let Some(KernelEvent::SpiAllocated { spi, .. }) = served.answer {
                    let key = SaKey {
                        protocol: *protocol,
                        spi,
                        dst: *dst,
                    };
                    self.table.record_larval(key, *src, now);
                }
            }
            KernelRequest::AddSa(spec) => {
                served.answer = sadb.answer(id, &approved).await;
                let installed = matches!(served.answer, Some(KernelEvent::Installed { .. }));
                served.updown.extend(self.table.record_sa(spec, installed));
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
                if let Some((removed, down)) = self.table.remove_sa(&key, *src) {
                    // An SA the kernel refused is not there to delete.
                    if !matches!(&removed, Removed::Sa(r) if !r.installed) {
                        served.answer = sadb.answer(id, &approved).await;
                    }
                    served.updown.extend(down);
                }
            }
            KernelRequest::AddPolicy(spec) => {
                // Recorded even if the kernel refuses, so the child's later delete is
                // accepted; the kernel crate deletes only policies with our reqid.
                served.answer = sadb.answer(id, &approved).await;
                self.table.record_policy(spec);
            }
            KernelRequest::DeletePolicy(spec) => {
                self.table.remove_policy(spec);
                served.answer = sadb.answer(id, &approved).await;
            }
        }
        served
    }

    /// Remove everything of ours from the kernel (`why` for the log line) and empty the
    /// table; the down runs of the tunnels that were up.
    pub async fn flush(
        &mut self,
        sadb: &Sadb,
        why: &str,
    ) -> Result<Vec<updown::Request>, kernel::KernelError> {
        let downs = self.table.clear();
        sadb.flush(why).await?;
        Ok(downs)
    }
}
