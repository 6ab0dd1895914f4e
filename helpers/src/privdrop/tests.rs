use super::*;
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

const CHILD_ENV: &str = "HELPERS_PRIVDROP_TEST_CHROOT";

/// Not a test on its own: the body of the child process `drop_in_child_process` starts by
/// re-running this test binary. Without the environment variable it does nothing.
#[test]
fn child_entry() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let cfg = DropConfig {
        user: None,
        chroot: PathBuf::from(dir),
    };
    match drop_privileges(&cfg) {
        Ok(c) => println!("READY {} {}", nix::unistd::gettid(), c.name),
        Err(e) => println!("FAILED {e}"),
    }
    // Wait until the parent has looked at us.
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    std::process::exit(0);
}

fn status_field(status: &str, key: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|| panic!("{key} missing from status"))
}

#[test]
fn drop_in_child_process() {
    if !Uid::effective().is_root() {
        println!(
            "SKIP drop_in_child_process: needs root (euid {})",
            Uid::effective()
        );
        return;
    }
    let dir = std::env::temp_dir().join(format!("privdrop-test-{}", std::process::id()));
    let _ = std::fs::remove_dir(&dir);
    let mut child = Command::new(std::env::current_exe().expect("current_exe"))
        .args([
            "--exact",
            "privdrop::tests::child_entry",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    let out = child.stdout.take().expect("stdout");
    let mut tid = None;
    for line in BufReader::new(out).lines() {
        let line = line.expect("read");
        // libtest prints "test ... " before our line without a newline.
        if let Some((_, rest)) = line.split_once("READY ") {
            tid = rest.split_whitespace().next().map(str::to_string);
            break;
        }
        assert!(!line.contains("FAILED "), "child: {line}");
    }
    let tid = tid.expect("child never reported");
    let task = format!("/proc/{pid}/task/{tid}");
    let status = std::fs::read_to_string(format!("{task}/status")).expect("status");
    let root = std::fs::read_link(format!("{task}/root")).expect("root");
    let proc_root = std::fs::read_link(format!("/proc/{pid}/root")).expect("root");
    drop(child.stdin.take());
    let _ = child.wait();

    for key in ["Uid:", "Gid:"] {
        let ids = status_field(&status, key);
        for id in ids.split_whitespace() {
            assert_ne!(id, "0", "{key} {ids}");
        }
    }
    let groups = status_field(&status, "Groups:");
    assert!(
        !groups.split_whitespace().any(|g| g == "0"),
        "groups {groups}"
    );
    for key in ["CapEff:", "CapPrm:", "CapInh:", "CapAmb:", "CapBnd:"] {
        assert_eq!(status_field(&status, key), "0000000000000000", "{key}");
    }
    assert_eq!(status_field(&status, "NoNewPrivs:"), "1");
    let canon = dir.canonicalize().expect("canonicalize");
    assert_eq!(root, canon);
    assert_eq!(proc_root, canon);
    let md = std::fs::metadata(&dir).expect("created");
    assert_eq!(md.mode() & 0o7777, 0o755);
    assert_eq!(md.uid(), 0);
    let _ = std::fs::remove_dir(&dir);
}

#[test]
fn chroot_dir_checks() {
    let base = std::env::temp_dir().join(format!("privdrop-dirs-{}", std::process::id()));
    std::fs::create_dir_all(&base).expect("mkdir");
    let file = base.join("file");
    std::fs::write(&file, b"x").expect("write");
    assert!(matches!(
        ensure_chroot_dir(&file),
        Err(PrivDropError::ChrootDir(_, ref why)) if why == "not a directory"
    ));
    let open = base.join("open");
    std::fs::create_dir(&open).expect("mkdir");
    std::fs::set_permissions(&open, std::os::unix::fs::PermissionsExt::from_mode(0o777))
        .expect("chmod");
    if Uid::effective().is_root() {
        match ensure_chroot_dir(&open) {
            Err(PrivDropError::ChrootDir(_, why)) => assert!(why.contains("mode 0777"), "{why}"),
            other => panic!("expected refusal, got {other:?}"),
        }
        let fresh = base.join("a/b");
        ensure_chroot_dir(&fresh).expect("create");
        let md = std::fs::metadata(&fresh).expect("md");
        assert_eq!(md.mode() & 0o7777, 0o755);
    } else {
        // Not root: the directory is ours, so the owner check fires first.
        assert!(matches!(
            ensure_chroot_dir(&open),
            Err(PrivDropError::ChrootDir(_, ref why)) if why.contains("must be root")
        ));
    }
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn user_resolution() {
    let c = resolve_user(None).expect("_isakmpd or nobody exists");
    assert!(c.name == DEFAULT_USER || c.name == FALLBACK_USER);
    assert_ne!(c.uid, 0);
    assert!(matches!(
        resolve_user(Some("no-such-user-isakmpd-test")),
        Err(PrivDropError::NoUser(_))
    ));
    assert!(matches!(
        resolve_user(Some("root")),
        Err(PrivDropError::RootUser(_))
    ));
}
