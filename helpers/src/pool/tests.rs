use super::*;
use nix::unistd::Uid;
use std::sync::Arc;

const ROLE_ENV: &str = "HELPERS_POOL_TEST_HELPER";

/// A toy service: squares numbers, proves it got its secret, reports its pid (the test
/// reads the rest from /proc: the helper's filter allows neither getuid nor stat), can be told
/// to die, and can be told to try a call its seccomp filter refuses.
struct Toy {
    secret: u64,
}

#[derive(Debug, Serialize, Deserialize)]
enum ToyReq {
    Square(u64),
    AddSecret(u64),
    WhoAmI,
    Die,
    OpenFile,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum ToyResp {
    Squared(u64),
    Sum(u64),
    Ids { pid: u32 },
    Opened(bool),
}

impl HelperService for Toy {
    type Secrets = u64;
    type Request = ToyReq;
    type Response = ToyResp;
    fn new(secret: u64) -> Self {
        Toy { secret }
    }
    fn serve(&mut self, req: ToyReq) -> ToyResp {
        match req {
            ToyReq::Square(n) => ToyResp::Squared(n.wrapping_mul(n)),
            ToyReq::AddSecret(n) => ToyResp::Sum(n + self.secret),
            ToyReq::WhoAmI => ToyResp::Ids {
                pid: std::process::id(),
            },
            ToyReq::Die => std::process::exit(3),
            ToyReq::OpenFile => ToyResp::Opened(std::fs::File::open("/").is_ok()),
        }
    }
}

/// Not a test on its own: the helper process body (the test binary re-runs itself).
#[test]
fn helper_entry() {
    let Ok(mode) = std::env::var(ROLE_ENV) else {
        return;
    };
    let privileges = match mode.as_str() {
        "keep" => Privileges::KeepForTests,
        "seccomp" => Privileges::SeccompOnlyForTests,
        dir => match DropConfig::helper() {
            Ok(cfg) => Privileges::Drop(DropConfig {
                chroot: dir.into(),
                ..cfg
            }),
            Err(e) => {
                eprintln!("toy helper: {e}");
                std::process::exit(1);
            }
        },
    };
    let code = match inherited_socket().and_then(|s| helper_main::<Toy>(s, &privileges)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("toy helper: {e}");
            1
        }
    };
    std::process::exit(code);
}

/// Drop privileges when root (into a fresh chroot directory, then seccomp); otherwise say
/// why not and run helpers unprivileged, with the filter if `seccomp`.
fn test_spawner(secret: u64, tag: &str, seccomp: bool) -> ExecSpawner<u64> {
    let mode = if Uid::effective().is_root() {
        chroot_dir(tag).to_string_lossy().into_owned()
    } else if seccomp {
        println!("pool tests: not root, helpers run with seccomp but without dropping privileges");
        "seccomp".to_string()
    } else {
        println!("pool tests: not root, helpers run without dropping privileges");
        "keep".to_string()
    };
    ExecSpawner::new(
        std::env::current_exe().expect("current_exe"),
        vec![
            "--exact".into(),
            "pool::tests::helper_entry".into(),
            "--nocapture".into(),
            "--test-threads=1".into(),
            "-q".into(),
        ],
        secret,
    )
    .env(ROLE_ENV, &mode)
}

fn chroot_dir(tag: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("pool-test-{tag}-{}", std::process::id()))
}

/// A field of /proc/<pid>/status.
fn status_field(pid: u32, key: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|| panic!("{key} missing from status"))
}

/// As root, a helper must run under the helpers' identity (not root, not the child's), in
/// its chroot, not dumpable, with the seccomp filter on.
fn assert_confined(pid: u32, tag: &str) {
    let who = privdrop::resolve(&DropConfig::helper().expect("helper identity")).expect("resolve");
    for id in status_field(pid, "Uid:").split_whitespace() {
        assert_eq!(id, who.uid.to_string(), "helper uid");
    }
    let child = privdrop::resolve_user(None).expect("child identity");
    assert_ne!(who.uid, child.uid);
    assert_eq!(status_field(pid, "Seccomp:"), "2", "filter mode");
    let root = std::fs::read_link(format!("/proc/{pid}/root")).expect("root");
    assert_eq!(root, chroot_dir(tag).canonicalize().expect("canonicalize"));
    // Not dumpable: the files in /proc/<pid> (not the directory) belong to root, not to the
    // helper's uid.
    let md = std::fs::metadata(format!("/proc/{pid}/status")).expect("proc status");
    assert_eq!(
        std::os::unix::fs::MetadataExt::uid(&md),
        0,
        "helper dumpable"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn squares_across_helpers_with_secret_and_drop() {
    let pool = Arc::new(
        HelperPool::<Toy>::start(3, test_spawner(1000, "sq", false))
            .await
            .expect("start"),
    );
    assert_eq!(pool.size(), 3);
    let mut calls = Vec::new();
    for n in 0..300u64 {
        let p = pool.clone();
        calls.push(tokio::spawn(async move {
            (n, p.call(RequestId(n), ToyReq::Square(n)).await)
        }));
    }
    for c in calls {
        let (n, r) = c.await.expect("join");
        assert_eq!(r.expect("call"), ToyResp::Squared(n * n));
    }
    assert_eq!(
        pool.call(RequestId(2), ToyReq::AddSecret(5))
            .await
            .expect("call"),
        ToyResp::Sum(1005)
    );
    // Several distinct helper processes answered, each unprivileged when we are root.
    let mut pids = std::collections::HashSet::new();
    let mut inflight = Vec::new();
    for i in 0..30 {
        let p = pool.clone();
        inflight.push(tokio::spawn(async move {
            p.call(RequestId(1000 + i), ToyReq::WhoAmI).await
        }));
    }
    for c in inflight {
        match c.await.expect("join").expect("call") {
            ToyResp::Ids { pid } => {
                pids.insert(pid);
                assert_ne!(pid, std::process::id());
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    if Uid::effective().is_root() {
        for &pid in &pids {
            assert_confined(pid, "sq");
        }
    }
    assert!(pids.len() >= 2, "load not spread: {pids:?}");
    assert!(pool.loads().iter().all(|&l| l == 0));
}

/// The pool tags requests with the caller's ids; a second request under an id still in
/// flight is refused, so the first keeps its own answer.
#[tokio::test(flavor = "current_thread")]
async fn requests_carry_the_callers_ids_and_duplicates_are_refused() {
    let pool = HelperPool::<Toy>::start(1, test_spawner(3, "ids", false))
        .await
        .expect("start");
    let (a, b) = tokio::join!(
        pool.call(RequestId(u64::MAX), ToyReq::Square(4)),
        pool.call(RequestId(u64::MAX), ToyReq::Square(5)),
    );
    assert_eq!(a, Ok(ToyResp::Squared(16)));
    assert_eq!(b, Err(PoolError::DuplicateId(RequestId(u64::MAX))));
    assert_eq!(
        pool.call(RequestId(u64::MAX), ToyReq::Square(6)).await,
        Ok(ToyResp::Squared(36))
    );
    assert_eq!(pool.loads(), vec![0]);
}

#[tokio::test(flavor = "current_thread")]
async fn dead_helper_fails_in_flight_and_is_replaced() {
    let pool = HelperPool::<Toy>::start(1, test_spawner(7, "die", false))
        .await
        .expect("start");
    let before = match pool.call(RequestId(4), ToyReq::WhoAmI).await.expect("call") {
        ToyResp::Ids { pid } => pid,
        other => panic!("unexpected {other:?}"),
    };
    // The helper exits while serving this request: the caller gets an error, not a hang.
    match pool.call(RequestId(5), ToyReq::Die).await {
        Err(PoolError::HelperDied(_)) => {}
        other => panic!("expected HelperDied, got {other:?}"),
    }
    assert_eq!(pool.stats().failed_in_flight.load(Ordering::SeqCst), 1);
    // The replacement has the secret and answers.
    assert_eq!(
        pool.call(RequestId(6), ToyReq::AddSecret(1))
            .await
            .expect("call"),
        ToyResp::Sum(8)
    );
    let after = match pool.call(RequestId(7), ToyReq::WhoAmI).await.expect("call") {
        ToyResp::Ids { pid } => pid,
        other => panic!("unexpected {other:?}"),
    };
    assert_ne!(before, after);
    assert_eq!(pool.stats().respawns.load(Ordering::SeqCst), 1);
}

/// A helper that makes a call outside its allow-list dies (SIGSYS); the caller gets an
/// error and a replacement, with the secret, serves on.
#[tokio::test(flavor = "current_thread")]
async fn forbidden_call_kills_the_helper_and_it_is_replaced() {
    if let Ok(a) = std::fs::read_to_string("/proc/sys/kernel/seccomp/actions_avail") {
        if !a.split_whitespace().any(|w| w == "trap") {
            println!("SKIP forbidden_call_kills_the_helper: no seccomp trap action");
            return;
        }
    } else {
        println!("SKIP forbidden_call_kills_the_helper: no seccomp filter support");
        return;
    }
    let pool = HelperPool::<Toy>::start(1, test_spawner(11, "forbid", true))
        .await
        .expect("start");
    let before = match pool.call(RequestId(8), ToyReq::WhoAmI).await.expect("call") {
        ToyResp::Ids { pid } => pid,
        other => panic!("unexpected {other:?}"),
    };
    if Uid::effective().is_root() {
        assert_confined(before, "forbid");
    } else {
        assert_eq!(status_field(before, "Seccomp:"), "2", "filter mode");
    }
    match pool.call(RequestId(9), ToyReq::OpenFile).await {
        Err(PoolError::HelperDied(_)) => {}
        other => panic!("expected HelperDied, got {other:?}"),
    }
    assert_eq!(
        pool.call(RequestId(10), ToyReq::AddSecret(1))
            .await
            .expect("call"),
        ToyResp::Sum(12)
    );
    match pool
        .call(RequestId(11), ToyReq::WhoAmI)
        .await
        .expect("call")
    {
        ToyResp::Ids { pid } => assert_ne!(pid, before),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(pool.stats().respawns.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "current_thread")]
async fn inline_pool_serves_in_process() {
    let pool = HelperPool::<Toy>::inline(40);
    assert_eq!(pool.size(), 0);
    assert_eq!(
        pool.call(RequestId(12), ToyReq::AddSecret(2))
            .await
            .expect("call"),
        ToyResp::Sum(42)
    );
    match pool
        .call(RequestId(13), ToyReq::WhoAmI)
        .await
        .expect("call")
    {
        ToyResp::Ids { pid } => assert_eq!(pid, std::process::id()),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn helper_rejects_garbage_without_panicking() {
    let (a, b) = ipc::socketpair().expect("socketpair");
    let client = Channel::new(a);
    client.send(&5u64).expect("secrets");
    // A frame whose payload is not a Tagged<ToyReq>.
    client.send(&(u64::MAX, 200u8, "junk")).expect("junk");
    match helper_main::<Toy>(b, &Privileges::KeepForTests) {
        Err(HelperError::Ipc(IpcError::Decode(_))) => {}
        other => panic!("expected a decode error, got {other:?}"),
    }
}
