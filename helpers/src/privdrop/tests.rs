use super::*;
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

const CHILD_ENV: &str = "HELPERS_PRIVDROP_TEST_CHROOT";
/// "child" or "helper": whose configuration the process drops with.
const ROLE_ENV: &str = "HELPERS_PRIVDROP_TEST_ROLE";
const CORES_ENV: &str = "HELPERS_PRIVDROP_TEST_CORES";

/// Not a test on its own: the body of the child process `drop_in_child_process` starts by
/// re-running this test binary. Without the environment variable it does nothing.
#[test]
fn child_entry() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let base = match std::env::var(ROLE_ENV).as_deref() {
        Ok("helper") => DropConfig::helper(),
        _ => Ok(DropConfig::default()),
    };
    let dropped = base.and_then(|cfg| {
        drop_privileges(&DropConfig {
            chroot: PathBuf::from(dir),
            ..cfg
        })
    });
    match dropped {
        Ok(c) => println!("READY {} {}", nix::unistd::gettid(), c.uid),
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
    drop_in_process("child");
}

#[test]
fn helper_drop_in_child_process() {
    drop_in_process("helper");
}

/// Drop with `role`'s configuration in a fresh process and check its /proc entries.
fn drop_in_process(role: &str) {
    if !Uid::effective().is_root() {
        println!(
            "SKIP {role} drop_in_child_process: needs root (euid {})",
            Uid::effective()
        );
        return;
    }
    let dir = std::env::temp_dir().join(format!("privdrop-test-{role}-{}", std::process::id()));
    let _ = std::fs::remove_dir(&dir);
    let mut child = Command::new(std::env::current_exe().expect("current_exe"))
        .args([
            "--exact",
            "privdrop::tests::child_entry",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &dir)
        .env(ROLE_ENV, role)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    let out = child.stdout.take().expect("stdout");
    let mut ready = None;
    for line in BufReader::new(out).lines() {
        let line = line.expect("read");
        // libtest prints "test ... " before our line without a newline.
        if let Some((_, rest)) = line.split_once("READY ") {
            let mut words = rest.split_whitespace().map(str::to_string);
            ready = words.next().zip(words.next());
            break;
        }
        assert!(!line.contains("FAILED "), "child: {line}");
    }
    let (tid, uid) = ready.expect("child never reported");
    let task = format!("/proc/{pid}/task/{tid}");
    let status = std::fs::read_to_string(format!("{task}/status")).expect("status");
    let root = std::fs::read_link(format!("{task}/root")).expect("root");
    let proc_root = std::fs::read_link(format!("/proc/{pid}/root")).expect("root");
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("limits");
    let owner = std::fs::metadata(format!("/proc/{pid}/status"))
        .expect("proc")
        .uid();
    drop(child.stdin.take());
    let _ = child.wait();

    let child_uid = resolve_user(None).expect("child identity").uid;
    let expected = match role {
        "helper" => {
            resolve(&DropConfig::helper().expect("helper identity"))
                .expect("resolve")
                .uid
        }
        _ => child_uid,
    };
    assert_eq!(uid, expected.to_string(), "{role} became someone else");
    if role == "helper" {
        assert_ne!(expected, child_uid, "helper shares the child's uid");
    }
    for id in status_field(&status, "Uid:").split_whitespace() {
        assert_eq!(id, uid, "{role}: Uid");
    }
    assert_eq!(core_limit(&limits), ("0", "0"), "{role}: {limits}");
    // Not dumpable: the kernel gives the files in /proc/<pid> (not the directory itself) to
    // root instead of the process's uid.
    assert_eq!(owner, 0, "{role}: dumpable");

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

/// Soft and hard limit of "Max core file size" in a /proc/<pid>/limits text.
fn core_limit(limits: &str) -> (&str, &str) {
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .expect("core line");
    let mut w = line["Max core file size".len()..].split_whitespace();
    (w.next().unwrap_or(""), w.next().unwrap_or(""))
}

/// Not a test on its own: the process `core_dumps_disabled_in_child_process` starts.
#[test]
fn cores_entry() {
    if std::env::var(CORES_ENV).is_err() {
        return;
    }
    if let Err(e) = disable_core_dumps() {
        println!("FAILED {e}");
        std::process::exit(1);
    }
    // SAFETY: PR_GET_DUMPABLE takes no pointer and only returns the flag.
    let dumpable = unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) };
    let core = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_CORE)
        .expect("getrlimit");
    println!("DUMPABLE {dumpable} CORE {} {}", core.0, core.1);
    std::process::exit(0);
}

#[test]
fn core_dumps_disabled_in_child_process() {
    let out = Command::new(std::env::current_exe().expect("current_exe"))
        .args([
            "--exact",
            "privdrop::tests::cores_entry",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CORES_ENV, "1")
        .stdin(Stdio::null())
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{:?}: {text}", out.status);
    let (_, report) = text.split_once("DUMPABLE ").expect("no report");
    assert_eq!(report.lines().next(), Some("0 CORE 0 0"), "{text}");
    // And this process, which did not call it, is dumpable: the check can tell.
    // SAFETY: as above.
    assert_eq!(unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) }, 1);
}

#[test]
fn helper_choice() {
    let helper = Who::Named(Some(HELPER_USER.to_string()));
    let fallback = Who::Id(HELPER_FALLBACK_ID, HELPER_FALLBACK_ID);
    // The named user wins whatever the fallback's state.
    assert_eq!(
        choose_helper(true, true, Some(65534)).expect("named"),
        helper
    );
    assert_eq!(choose_helper(true, false, None).expect("named"), helper);
    assert_eq!(
        choose_helper(false, false, Some(65534)).expect("id"),
        fallback
    );
    assert_eq!(choose_helper(false, false, None).expect("id"), fallback);
    for (taken, child) in [(true, Some(65534)), (false, Some(HELPER_FALLBACK_ID))] {
        match choose_helper(false, taken, child) {
            Err(e @ PrivDropError::NoHelperUser(_)) => {
                assert!(
                    e.to_string()
                        .contains("create the system user _isakmpd-helper"),
                    "{e}"
                )
            }
            other => panic!("expected NoHelperUser, got {other:?}"),
        }
    }
}

#[test]
fn helper_identity_follows_the_databases() {
    let named = User::from_name(HELPER_USER).expect("getpwnam").is_some();
    let id = HELPER_FALLBACK_ID;
    let taken = User::from_uid(Uid::from_raw(id))
        .expect("getpwuid")
        .is_some()
        || Group::from_gid(Gid::from_raw(id))
            .expect("getgrgid")
            .is_some();
    match helper_identity() {
        Ok(Who::Named(Some(n))) => assert!(named && n == HELPER_USER),
        Ok(Who::Id(u, g)) => assert!(!named && !taken && u == id && g == id),
        Ok(other) => panic!("unexpected {other:?}"),
        Err(PrivDropError::NoHelperUser(_)) => assert!(!named && taken),
        Err(e) => panic!("{e}"),
    }
    let cfg = match DropConfig::helper() {
        Ok(c) => c,
        Err(e) => {
            println!("SKIP helper identity: {e}");
            return;
        }
    };
    assert!(cfg.distinct_from_child);
    assert_eq!(cfg.chroot, PathBuf::from(DEFAULT_CHROOT));
    let helper = resolve(&cfg).expect("resolve helper");
    let child = resolve(&DropConfig::default()).expect("resolve child");
    assert_ne!(helper.uid, child.uid);
    assert_ne!(helper.uid, 0);
}

#[test]
fn resolve_refuses_root_and_the_childs_identity_for_helpers() {
    let id = |uid, gid, distinct| DropConfig {
        who: Who::Id(uid, gid),
        chroot: PathBuf::from(DEFAULT_CHROOT),
        distinct_from_child: distinct,
    };
    for cfg in [id(0, 0, false), id(0, 1000, false), id(1000, 0, true)] {
        match resolve(&cfg) {
            Err(e @ PrivDropError::RootUser(_)) => assert!(e.to_string().contains("0"), "{e}"),
            other => panic!("{cfg:?}: expected RootUser, got {other:?}"),
        }
    }
    let child = resolve_user(None).expect("child identity");
    // The child's own identity is fine for the child, refused for a helper, by name or id.
    assert_eq!(
        resolve(&id(child.uid, child.gid, false)).expect("id").uid,
        child.uid
    );
    let named_child = DropConfig {
        who: Who::Named(None),
        distinct_from_child: true,
        ..DropConfig::default()
    };
    for cfg in [named_child, id(child.uid, child.gid, true)] {
        match resolve(&cfg) {
            Err(e @ PrivDropError::SameAsChild(_, uid)) => {
                assert_eq!(uid, child.uid);
                assert!(e.to_string().contains("user of their own"), "{e}");
            }
            other => panic!("{cfg:?}: expected SameAsChild, got {other:?}"),
        }
    }
    assert!(matches!(
        resolve(&DropConfig {
            who: Who::Named(Some("root".into())),
            ..DropConfig::helper().unwrap_or_default()
        }),
        Err(PrivDropError::RootUser(_))
    ));
    let other = id(child.uid.wrapping_add(1).max(1), child.gid, true);
    assert_eq!(resolve(&other).expect("distinct id").uid, other_uid(&other));
}

fn other_uid(cfg: &DropConfig) -> u32 {
    match cfg.who {
        Who::Id(u, _) => u,
        Who::Named(_) => panic!("not an id"),
    }
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
