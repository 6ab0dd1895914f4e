//! The one queue updown scripts run from, in the parent: bounded (a run that does not fit
//! is refused with a log line, never a new thread), at most one script at a time per
//! connection and in the order queued (its down never overtakes its up), at most
//! [`WORKERS`] scripts at once over all connections, each verb under [`updown::TIMEOUT`].
//! A tunnel that goes down (or up) again before its queued up (or down) has started
//! cancels that run instead of adding one: what runs is what changed, and a tunnel that
//! flaps a thousand times costs at most two runs.

use crate::log;
use crate::updown::{self, Request};
use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Runs waiting at most.
pub const MAX_QUEUED: usize = 256;
/// Scripts running at once at most (each on a thread started with the queue).
pub const WORKERS: usize = 4;

struct Job {
    script: String,
    request: Request,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Job>,
    /// Connections with a script running now.
    running: HashSet<String>,
    closed: bool,
}

type Shared = Arc<(Mutex<State>, Condvar)>;

/// Why a run was not queued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdownRefused {
    /// A worker panicked holding the lock: no run can be queued any more.
    Broken,
    /// [`MAX_QUEUED`] runs already wait; this one (up or down, of the connection) is dropped.
    Full { up: bool, connection: String },
}

impl fmt::Display for UpdownRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpdownRefused::Broken => f.write_str("updown queue broken"),
            UpdownRefused::Full { up, connection } => write!(
                f,
                "updown {} {connection} not run: {MAX_QUEUED} runs already waiting",
                if *up { "up" } else { "down" }
            ),
        }
    }
}

impl std::error::Error for UpdownRefused {}

pub struct UpdownQueue {
    shared: Shared,
    timeout: Duration,
}

impl Default for UpdownQueue {
    fn default() -> Self {
        UpdownQueue::new(updown::TIMEOUT)
    }
}

impl UpdownQueue {
    /// A queue whose scripts get `timeout` per verb; its workers start now.
    pub fn new(timeout: Duration) -> UpdownQueue {
        let shared: Shared = Arc::new((Mutex::new(State::default()), Condvar::new()));
        for _ in 0..WORKERS {
            let s = Arc::clone(&shared);
            std::thread::spawn(move || work(&s, timeout));
        }
        UpdownQueue { shared, timeout }
    }

    /// Queue `script` for `request`. Refused (and logged) when the queue is full.
    pub fn push(&self, script: String, request: Request) -> Result<(), UpdownRefused> {
        let (lock, cv) = &*self.shared;
        let Ok(mut st) = lock.lock() else {
            return Err(UpdownRefused::Broken);
        };
        let opposite = st.queue.iter().position(|j| {
            let q = &j.request;
            q.up != request.up
                && q.connection == request.connection
                && q.me == request.me
                && q.peer == request.peer
                && q.my_client == request.my_client
                && q.peer_client == request.peer_client
        });
        if let Some(i) = opposite {
            st.queue.remove(i);
            cv.notify_all();
            return Ok(());
        }
        if st.queue.len() >= MAX_QUEUED {
            let why = UpdownRefused::Full {
                up: request.up,
                connection: request.connection,
            };
            drop(st);
            log::limited("updown queue full", log::Level::Warning, &why.to_string());
            return Err(why);
        }
        st.queue.push_back(Job { script, request });
        cv.notify_all();
        Ok(())
    }

    /// Runs waiting or running.
    pub fn pending(&self) -> usize {
        let (lock, _) = &*self.shared;
        lock.lock()
            .map(|st| st.queue.len() + st.running.len())
            .unwrap_or(0)
    }

    /// Wait until nothing is waiting or running, or `deadline`; whether it emptied.
    pub fn drain(&self, deadline: Instant) -> bool {
        let (lock, cv) = &*self.shared;
        let Ok(mut st) = lock.lock() else {
            return false;
        };
        loop {
            if st.queue.is_empty() && st.running.is_empty() {
                return true;
            }
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return false;
            };
            match cv.wait_timeout(st, left) {
                Ok((g, _)) => st = g,
                Err(_) => return false,
            }
        }
    }

    /// The longest a queued run can take (every verb timing out).
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

impl Drop for UpdownQueue {
    fn drop(&mut self) {
        let (lock, cv) = &*self.shared;
        if let Ok(mut st) = lock.lock() {
            st.closed = true;
        }
        cv.notify_all();
    }
}

fn work(shared: &Shared, timeout: Duration) {
    let (lock, cv) = &**shared;
    loop {
        let job = {
            let Ok(mut st) = lock.lock() else { return };
            loop {
                if st.closed {
                    return;
                }
                let next = st
                    .queue
                    .iter()
                    .position(|j| !st.running.contains(&j.request.connection));
                if let Some(job) = next.and_then(|i| st.queue.remove(i)) {
                    st.running.insert(job.request.connection.clone());
                    break job;
                }
                st = match cv.wait(st) {
                    Ok(g) => g,
                    Err(_) => return,
                };
            }
        };
        updown::run_with_timeout(&job.script, &job.request, timeout);
        if let Ok(mut st) = lock.lock() {
            st.running.remove(&job.request.connection);
        }
        cv.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ike::engine::Selector;

    fn req(conn: &str, up: bool) -> Request {
        Request {
            connection: conn.into(),
            up,
            me: "192.0.2.1".parse().expect("ip"),
            peer: "192.0.2.2".parse().expect("ip"),
            my_client: Selector::host("10.1.0.1".parse().expect("ip")),
            peer_client: Selector::host("10.2.0.1".parse().expect("ip")),
        }
    }

    fn tmp(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("isakmpd-updownq-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("mkdir");
        d
    }

    #[test]
    fn one_connection_runs_in_order_and_one_at_a_time() {
        let d = tmp("order");
        let rec = d.join("rec");
        // Each verb appends start and end marks; an overlap would interleave them.
        let script = format!(
            "echo \"start $PLUTO_VERB\" >> {r}; sleep 0.05; echo \"end $PLUTO_VERB\" >> {r}",
            r = rec.display()
        );
        let q = UpdownQueue::new(Duration::from_secs(5));
        q.push(script.clone(), req("a", true)).expect("queued");
        // Once the up has started, the down queues behind it (it would cancel an up that
        // had not).
        let started = || std::fs::read_to_string(&rec).is_ok_and(|t| t.contains("start"));
        let deadline = Instant::now() + Duration::from_secs(10);
        while !started() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        q.push(script, req("a", false)).expect("queued");
        assert!(q.drain(Instant::now() + Duration::from_secs(20)));
        let text = std::fs::read_to_string(&rec).expect("record");
        let want: Vec<String> = [
            "prepare-client",
            "route-client",
            "up-client",
            "down-client",
            "unroute-client",
        ]
        .iter()
        .flat_map(|v| [format!("start {v}"), format!("end {v}")])
        .collect();
        assert_eq!(text.lines().collect::<Vec<_>>(), want);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_run_not_yet_started_is_cancelled_by_its_opposite() {
        let d = tmp("cancel");
        let rec = d.join("rec");
        let q = UpdownQueue::new(Duration::from_secs(5));
        // The first up starts at once and takes a while; behind it, down and up again
        // cancel out, and so do up and down of another tunnel.
        let slow = format!(
            "sleep 0.3; echo \"$PLUTO_VERB $PLUTO_PEER_CLIENT\" >> {}",
            rec.display()
        );
        q.push(slow.clone(), req("a", true)).expect("queued");
        // The first run has started once the queue holds nothing but it.
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let (lock, _) = &*q.shared;
            if lock.lock().is_ok_and(|st| st.queue.is_empty()) {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        q.push(slow.clone(), req("a", false)).expect("queued");
        q.push(slow.clone(), req("a", true)).expect("cancelled");
        let mut other = req("a", true);
        other.peer_client = Selector::host("10.2.0.99".parse().expect("ip"));
        q.push(slow.clone(), other.clone()).expect("queued");
        other.up = false;
        q.push(slow, other).expect("cancelled");
        assert!(q.drain(Instant::now() + Duration::from_secs(20)));
        let text = std::fs::read_to_string(&rec).expect("record");
        assert_eq!(
            text.lines().collect::<Vec<_>>(),
            [
                "prepare-client 10.2.0.1/32",
                "route-client 10.2.0.1/32",
                "up-client 10.2.0.1/32"
            ]
        );
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn the_queue_is_bounded_and_never_starts_more_threads() {
        let d = tmp("bound");
        let q = UpdownQueue::new(Duration::from_secs(5));
        let threads = || {
            std::fs::read_dir("/proc/self/task")
                .map(|r| r.count())
                .unwrap_or(0)
        };
        let before = threads();
        let script = format!("sleep 0.2; touch {}/ran", d.display());
        let mut refused = 0;
        for i in 0..10_000 {
            if q.push(script.clone(), req(&format!("c{}", i % 8), i % 2 == 0))
                .is_err()
            {
                refused += 1;
            }
        }
        assert!(
            refused >= 10_000 - MAX_QUEUED - WORKERS,
            "refused {refused}"
        );
        // At most WORKERS scripts, each a sh and its reader threads: a few threads, not
        // thousands.
        assert!(
            threads() <= before + 2 * WORKERS + 2,
            "{} threads, {before} before",
            threads()
        );
        drop(q);
        let _ = std::fs::remove_dir_all(&d);
    }
}
