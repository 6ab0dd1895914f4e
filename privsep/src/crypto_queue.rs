//! The one queue of crypto work between the engine and the helpers.
//!
//! The driver pushes each of the engine's crypto requests here under the engine's own
//! [`RequestId`]; a fixed set of long-lived workers ([`WORKERS_PER_HELPER`] per helper slot,
//! one with `-j 0`) takes them in order, has a helper do the work and sends `(RequestId, CryptoResult)` back
//! over the single channel the driver's loop reads. The queue is bounded: when it is full a
//! request is not queued and the caller answers it at once with a failure, so a flood costs
//! memory up to [`CAPACITY`] and no more, and nothing the engine waits for is ever dropped.
//! Its depth (waiting and in service) is visible to the driver and the report.
//!
//! Two lanes: work for ISAKMP SAs whose peers have authenticated (Quick Mode, its PFS) is
//! served first, and when the queue is full it displaces the newest stranger's phase-1 work,
//! so a flood of first messages cannot starve the tunnels that are up.

use crate::driver::Pool;
use crate::log;
use ike::crypto::{CryptoRequest, CryptoResult};
use ike::engine::RequestId;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, Notify};

/// Requests that may wait at once. Far above what any test or realistic load queues (a
/// Main Mode needs a handful of requests, a helper finishes a DH in milliseconds), so only
/// a flood that helpers cannot keep up with reaches it.
pub const CAPACITY: usize = 4096;

/// Workers per helper: two, so that a helper has its next request in hand while its last
/// answer travels back to the child (one would leave it idle for that round trip).
pub const WORKERS_PER_HELPER: usize = 2;

/// What the queue holds and what its workers answer with.
pub type Pending = CryptoQueue<CryptoRequest>;

/// A bounded FIFO of `(RequestId, T)` shared by one producer and several async consumers.
#[derive(Debug)]
pub struct CryptoQueue<T> {
    state: Mutex<State<T>>,
    /// Wakes one waiting worker per item (and each other on close).
    ready: Notify,
    capacity: usize,
    shed: AtomicU64,
}

#[derive(Debug)]
struct State<T> {
    /// Work for established ISAKMP SAs, served first.
    established: VecDeque<(RequestId, T)>,
    /// Work for peers that have proven nothing yet (phase 1).
    strangers: VecDeque<(RequestId, T)>,
    in_service: usize,
    closed: bool,
}

impl<T> State<T> {
    fn waiting(&self) -> usize {
        self.established.len() + self.strangers.len()
    }
}

/// Which lane a request waits in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lane {
    /// For an ISAKMP SA whose peer has authenticated.
    Established,
    /// For a phase-1 exchange: a peer that has proven nothing yet.
    Stranger,
}

/// The queue was full: the request, handed back to be answered by the caller.
#[derive(Debug, PartialEq, Eq)]
pub struct Full<T>(pub RequestId, pub T);

/// How deep the queue is, for the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Depth {
    pub waiting: usize,
    pub in_service: usize,
    pub capacity: usize,
    pub shed: u64,
}

impl<T> CryptoQueue<T> {
    pub fn new(capacity: usize) -> CryptoQueue<T> {
        CryptoQueue {
            state: Mutex::new(State {
                established: VecDeque::new(),
                strangers: VecDeque::new(),
                in_service: 0,
                closed: false,
            }),
            ready: Notify::new(),
            capacity: capacity.max(1),
            shed: AtomicU64::new(0),
        }
    }

    // A poisoned lock means a worker panicked while holding it; the data (a deque and two
    // counters) is still consistent, so carry on with it rather than stop serving crypto.
    fn state(&self) -> std::sync::MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queue a stranger's `item` behind everything waiting, or hand it back (counted as
    /// shed) when `capacity` items already wait or the queue is closed.
    pub fn push(&self, id: RequestId, item: T) -> Result<(), Full<T>> {
        self.push_in(Lane::Stranger, id, item).map(|_| ())
    }

    /// Queue `item` in `lane`. When the queue is full, established work displaces the
    /// newest stranger's, which is handed back as `Ok(Some(..))` to be answered as failed;
    /// otherwise `item` itself is handed back. Both count as shed.
    pub fn push_in(&self, lane: Lane, id: RequestId, item: T) -> Result<Option<Full<T>>, Full<T>> {
        let mut s = self.state();
        let mut displaced = None;
        if s.closed {
            self.shed.fetch_add(1, Ordering::Relaxed);
            return Err(Full(id, item));
        }
        if s.waiting() >= self.capacity {
            let victim = match lane {
                Lane::Established => s.strangers.pop_back(),
                Lane::Stranger => None,
            };
            self.shed.fetch_add(1, Ordering::Relaxed);
            match victim {
                Some((vid, v)) => displaced = Some(Full(vid, v)),
                None => return Err(Full(id, item)),
            }
        }
        match lane {
            Lane::Established => s.established.push_back((id, item)),
            Lane::Stranger => s.strangers.push_back((id, item)),
        }
        drop(s);
        self.ready.notify_one();
        Ok(displaced)
    }

    /// The oldest item, taken into service (see [`CryptoQueue::finished`]), or `None`
    /// without waiting when nothing waits.
    pub fn try_pop(&self) -> Option<(RequestId, T)> {
        let mut s = self.state();
        let item = match s.established.pop_front() {
            Some(i) => i,
            None => s.strangers.pop_front()?,
        };
        s.in_service += 1;
        let more = s.waiting() > 0;
        drop(s);
        if more {
            // One wake-up may have stood for several pushes: pass it on.
            self.ready.notify_one();
        }
        Some(item)
    }

    /// The oldest item once there is one; `None` once the queue is closed and empty.
    pub async fn pop(&self) -> Option<(RequestId, T)> {
        loop {
            if let Some(item) = self.try_pop() {
                return Some(item);
            }
            if self.state().closed {
                self.ready.notify_one();
                return None;
            }
            // A push between the check and this await leaves a permit: no wake-up is lost.
            self.ready.notified().await;
        }
    }

    /// An item taken by `pop` has been answered.
    pub fn finished(&self) {
        let mut s = self.state();
        s.in_service = s.in_service.saturating_sub(1);
    }

    /// No more pushes; workers end once what waits is served.
    pub fn close(&self) {
        self.state().closed = true;
        self.ready.notify_one();
    }

    pub fn depth(&self) -> Depth {
        let s = self.state();
        Depth {
            waiting: s.waiting(),
            in_service: s.in_service,
            capacity: self.capacity,
            shed: self.shed.load(Ordering::Relaxed),
        }
    }
}

/// What a request the full queue turned away is answered with (the engine logs it with the
/// exchange it ends).
pub const QUEUE_FULL: &str = "crypto queue full";

/// Queue the engine's request `id` in `lane`; what the full queue turns away (this request,
/// or the newest stranger's it displaced) is answered at once over `done` with a failure
/// (the engine gives up that exchange) rather than hold more work than the helpers can
/// catch up on. Returns whether `id` was queued.
pub fn submit(
    queue: &Pending,
    lane: Lane,
    id: RequestId,
    request: CryptoRequest,
    done: &mpsc::UnboundedSender<(RequestId, CryptoResult)>,
) -> bool {
    let (queued, failed) = match queue.push_in(lane, id, request) {
        Ok(None) => return true,
        Ok(Some(Full(displaced, _))) => (true, displaced),
        Err(Full(id, _)) => (false, id),
    };
    let depth = queue.depth();
    // A flood of peers is what fills the queue: rate-limited, and counted in the report.
    log::limited(
        QUEUE_FULL,
        log::Level::Warning,
        &format!(
            "{QUEUE_FULL} ({} waiting): request {} failed, {} shed so far",
            depth.capacity, failed.0, depth.shed
        ),
    );
    // The driver's loop reads this channel and is the caller: the answer cannot be lost.
    let _ = done.send((failed, CryptoResult::Failed(QUEUE_FULL.to_string())));
    queued
}

/// Start the workers that serve `queue` with `pool`: [`WORKERS_PER_HELPER`] per helper (the
/// pool gives each call to the least-loaded helper, so they spread evenly), one when crypto
/// runs in this process (it is done in the worker, one request at a time, as before). Each answers over `done` and
/// ends when the queue is closed or the driver's loop is gone.
pub fn start_workers(
    queue: &Arc<Pending>,
    pool: &Arc<Pool>,
    done: &mpsc::UnboundedSender<(RequestId, CryptoResult)>,
    helper_refusals: &Arc<AtomicU64>,
) {
    let workers = match pool.size() {
        0 => 1,
        n => n * WORKERS_PER_HELPER,
    };
    for _ in 0..workers {
        let (queue, pool, done) = (queue.clone(), pool.clone(), done.clone());
        let refused = helper_refusals.clone();
        tokio::spawn(async move {
            while let Some((id, request)) = queue.pop().await {
                let r = pool
                    .call(id, request)
                    .await
                    .unwrap_or_else(|e| CryptoResult::Failed(format!("helper: {e:?}")));
                if matches!(r, CryptoResult::Refused { .. }) {
                    refused.fetch_add(1, Ordering::Relaxed);
                }
                queue.finished();
                if done.send((id, r)).is_err() {
                    return;
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn items_come_out_in_order_with_their_ids() {
        let q = CryptoQueue::new(8);
        for i in [5u64, 3, 9] {
            q.push(RequestId(i), format!("r{i}")).unwrap();
        }
        assert_eq!(q.try_pop(), Some((RequestId(5), "r5".to_string())));
        assert_eq!(q.try_pop(), Some((RequestId(3), "r3".to_string())));
        assert_eq!(q.try_pop(), Some((RequestId(9), "r9".to_string())));
        assert_eq!(q.try_pop(), None);
        assert_eq!(
            q.depth(),
            Depth {
                waiting: 0,
                in_service: 3,
                capacity: 8,
                shed: 0
            }
        );
        q.finished();
        assert_eq!(q.depth().in_service, 2);
    }

    #[test]
    fn a_full_queue_hands_the_request_back_and_counts_it() {
        let q = CryptoQueue::new(2);
        q.push(RequestId(1), 'a').unwrap();
        q.push(RequestId(2), 'b').unwrap();
        assert_eq!(q.push(RequestId(3), 'c'), Err(Full(RequestId(3), 'c')));
        assert_eq!(q.push(RequestId(4), 'd'), Err(Full(RequestId(4), 'd')));
        let d = q.depth();
        assert_eq!((d.waiting, d.capacity, d.shed), (2, 2, 2));
        // Room again once one is taken; what waited is untouched.
        assert_eq!(q.try_pop(), Some((RequestId(1), 'a')));
        q.push(RequestId(5), 'e').unwrap();
        assert_eq!(q.try_pop(), Some((RequestId(2), 'b')));
        assert_eq!(q.try_pop(), Some((RequestId(5), 'e')));
    }

    #[test]
    fn overflow_is_answered_at_once_under_its_id_not_dropped() {
        let q = Pending::new(1);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let req = CryptoRequest::DhKeygen {
            group: ike::crypto::Group::Modp2048,
        };
        assert!(submit(&q, Lane::Stranger, RequestId(10), req.clone(), &tx));
        assert!(rx.try_recv().is_err());
        assert!(!submit(&q, Lane::Stranger, RequestId(11), req.clone(), &tx));
        assert_eq!(
            rx.try_recv(),
            Ok((RequestId(11), CryptoResult::Failed(QUEUE_FULL.into())))
        );
        assert_eq!(q.try_pop(), Some((RequestId(10), req)));
        assert_eq!(q.depth().shed, 1);
    }

    #[test]
    fn established_work_goes_first_and_displaces_the_newest_stranger_when_full() {
        let q = CryptoQueue::new(3);
        q.push_in(Lane::Stranger, RequestId(1), "s1").unwrap();
        q.push_in(Lane::Stranger, RequestId(2), "s2").unwrap();
        q.push_in(Lane::Established, RequestId(3), "e3").unwrap();
        // Full: established work takes the newest stranger's place, a stranger is refused.
        assert_eq!(
            q.push_in(Lane::Established, RequestId(4), "e4"),
            Ok(Some(Full(RequestId(2), "s2")))
        );
        assert_eq!(
            q.push_in(Lane::Stranger, RequestId(5), "s5"),
            Err(Full(RequestId(5), "s5"))
        );
        assert_eq!(q.depth().shed, 2);
        assert_eq!(q.try_pop(), Some((RequestId(3), "e3")));
        assert_eq!(q.try_pop(), Some((RequestId(4), "e4")));
        assert_eq!(q.try_pop(), Some((RequestId(1), "s1")));
        // Full of established work: the newcomer is refused, even when established.
        for i in 10..13 {
            q.push_in(Lane::Established, RequestId(i), "e").unwrap();
        }
        assert_eq!(
            q.push_in(Lane::Established, RequestId(13), "x"),
            Err(Full(RequestId(13), "x"))
        );
    }

    #[test]
    fn a_displaced_stranger_is_answered_at_once_under_its_id() {
        let q = Pending::new(1);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let req = CryptoRequest::DhKeygen {
            group: ike::crypto::Group::Modp2048,
        };
        assert!(submit(&q, Lane::Stranger, RequestId(20), req.clone(), &tx));
        assert!(submit(
            &q,
            Lane::Established,
            RequestId(21),
            req.clone(),
            &tx
        ));
        assert_eq!(
            rx.try_recv(),
            Ok((RequestId(20), CryptoResult::Failed(QUEUE_FULL.into())))
        );
        assert_eq!(q.try_pop(), Some((RequestId(21), req)));
    }

    #[test]
    fn workers_wake_for_every_item_and_end_on_close() {
        rt().block_on(async {
            let q = Arc::new(CryptoQueue::new(CAPACITY));
            let (tx, mut rx) = mpsc::unbounded_channel();
            let mut workers = Vec::new();
            for w in 0..3 {
                let (q, tx) = (q.clone(), tx.clone());
                workers.push(tokio::spawn(async move {
                    while let Some((id, n)) = q.pop().await {
                        tokio::task::yield_now().await;
                        q.finished();
                        tx.send((id, n * 2, w)).unwrap();
                    }
                }));
            }
            drop(tx);
            // Pushed in bursts while workers wait, so one wake-up stands for several items.
            for i in 0..100u64 {
                q.push(RequestId(i), i).unwrap();
                if i % 10 == 0 {
                    tokio::task::yield_now().await;
                }
            }
            let mut seen = Vec::new();
            for _ in 0..100 {
                let (id, doubled, _) = rx.recv().await.unwrap();
                assert_eq!(doubled, id.0 * 2);
                seen.push(id.0);
            }
            seen.sort_unstable();
            assert_eq!(seen, (0..100).collect::<Vec<_>>());
            q.close();
            for w in workers {
                w.await.unwrap();
            }
            assert_eq!(q.push(RequestId(100), 0), Err(Full(RequestId(100), 0)));
            assert_eq!(q.depth().in_service, 0);
        });
    }
}
