use super::*;
use nix::unistd::Uid;
use std::sync::Arc;

const ROLE_ENV: &str = "HELPERS_POOL_TEST_HELPER";

/// A toy service: squares numbers, proves it got its secret, reports who it runs as,
/// and can be told to die.
struct Toy {
    secret: u64,
}

#[derive(Debug, Serialize, Deserialize)]
enum ToyReq {
    Square(u64),
    AddSecret(u64),
    WhoAmI,
    Die,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum ToyResp {
    Squared(u64),
    Sum(u64),
    Ids {
        uid: u32,
        pid: u32,
        root_is_chroot: bool,
    },
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
                uid: nix::unistd::getuid().as_raw(),
                pid: std::process::id(),
                // In the empty chroot directory there is no /proc and no /etc.
                root_is_chroot: !std::path::Path::new("/etc").exists(),
            },
            ToyReq::Die => std::process::exit(3),
        }
    }
}

/// Not a test on its own: the helper process body (the test binary re-runs itself).
#[test]
fn helper_entry() {
    let Ok(mode) = std::env::var(ROLE_ENV) else {
        return;
    };
    let privileges = if mode == "keep" {
        Privileges::KeepForTests
    } else {
        Privileges::Drop(DropConfig {
            chroot: mode.into(),
            ..DropConfig::default()
        })
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

/// Drop privileges when root (into a fresh chroot directory); otherwise say why not.
fn test_spawner(secret: u64, tag: &str) -> ExecSpawner<u64> {
    let mode = if Uid::effective().is_root() {
        let dir = std::env::temp_dir().join(format!("pool-test-{tag}-{}", std::process::id()));
        dir.to_string_lossy().into_owned()
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

#[tokio::test(flavor = "current_thread")]
async fn squares_across_helpers_with_secret_and_drop() {
    let pool = Arc::new(
        HelperPool::<Toy>::start(3, test_spawner(1000, "sq"))
            .await
            .expect("start"),
    );
    assert_eq!(pool.size(), 3);
    let mut calls = Vec::new();
    for n in 0..300u64 {
        let p = pool.clone();
        calls.push(tokio::spawn(
            async move { (n, p.call(ToyReq::Square(n)).await) },
        ));
    }
    for c in calls {
        let (n, r) = c.await.expect("join");
        assert_eq!(r.expect("call"), ToyResp::Squared(n * n));
    }
    assert_eq!(
        pool.call(ToyReq::AddSecret(5)).await.expect("call"),
        ToyResp::Sum(1005)
    );
    // Several distinct helper processes answered, each unprivileged when we are root.
    let mut pids = std::collections::HashSet::new();
    let mut inflight = Vec::new();
    for _ in 0..30 {
        let p = pool.clone();
        inflight.push(tokio::spawn(async move { p.call(ToyReq::WhoAmI).await }));
    }
    for c in inflight {
        match c.await.expect("join").expect("call") {
            ToyResp::Ids {
                uid,
                pid,
                root_is_chroot,
            } => {
                pids.insert(pid);
                assert_ne!(pid, std::process::id());
                if Uid::effective().is_root() {
                    assert_ne!(uid, 0, "helper kept root");
                    assert!(root_is_chroot, "helper not chrooted");
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(pids.len() >= 2, "load not spread: {pids:?}");
    assert!(pool.loads().iter().all(|&l| l == 0));
}

#[tokio::test(flavor = "current_thread")]
async fn dead_helper_fails_in_flight_and_is_replaced() {
    let pool = HelperPool::<Toy>::start(1, test_spawner(7, "die"))
        .await
        .expect("start");
    let before = match pool.call(ToyReq::WhoAmI).await.expect("call") {
        ToyResp::Ids { pid, .. } => pid,
        other => panic!("unexpected {other:?}"),
    };
    // The helper exits while serving this request: the caller gets an error, not a hang.
    match pool.call(ToyReq::Die).await {
        Err(PoolError::HelperDied(_)) => {}
        other => panic!("expected HelperDied, got {other:?}"),
    }
    assert_eq!(pool.stats().failed_in_flight.load(Ordering::SeqCst), 1);
    // The replacement has the secret and answers.
    assert_eq!(
        pool.call(ToyReq::AddSecret(1)).await.expect("call"),
        ToyResp::Sum(8)
    );
    let after = match pool.call(ToyReq::WhoAmI).await.expect("call") {
        ToyResp::Ids { pid, .. } => pid,
        other => panic!("unexpected {other:?}"),
    };
    assert_ne!(before, after);
    assert_eq!(pool.stats().respawns.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "current_thread")]
async fn inline_pool_serves_in_process() {
    let pool = HelperPool::<Toy>::inline(40);
    assert_eq!(pool.size(), 0);
    assert_eq!(
        pool.call(ToyReq::AddSecret(2)).await.expect("call"),
        ToyResp::Sum(42)
    );
    match pool.call(ToyReq::WhoAmI).await.expect("call") {
        ToyResp::Ids { pid, .. } => assert_eq!(pid, std::process::id()),
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
