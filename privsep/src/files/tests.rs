use super::*;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("privsep-files-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("mkdir");
    d
}

#[test]
fn config_file_modes() {
    let d = tempdir("conf");
    let p = d.join("isakmpd.conf");
    std::fs::write(&p, b"[General]\n").expect("write");
    for (mode, word) in [
        (0o644, "readable"),
        (0o604, "readable"),
        (0o620, "writable"),
        (0o601, "accessible"),
    ] {
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).expect("chmod");
        let e = read_secret_file(&p).expect_err("too open");
        assert_eq!(
            e.to_string(),
            format!(
                "{}: mode {mode:04o}, must not be {word} by group or others",
                p.display()
            )
        );
        assert_eq!(e.exit_status(), 1);
    }
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    assert_eq!(
        read_secret_file(&p).expect("0600 accepted").as_slice(),
        b"[General]\n"
    );
    assert!(matches!(
        read_secret_file(&d.join("missing")),
        Err(FileError::Io(..))
    ));
    assert!(matches!(
        read_secret_file(&d),
        Err(FileError::NotRegular(_))
    ));
    if nix::unistd::geteuid().is_root() {
        nix::unistd::chown(&p, Some(nix::unistd::Uid::from_raw(65534)), None).expect("chown");
        let e = read_secret_file(&p).expect_err("not root's");
        assert_eq!(
            e.to_string(),
            format!("{}: owned by uid 65534, must be owned by root", p.display())
        );
    } else {
        println!("SKIP owner check: needs root to chown");
    }
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn run_files_only_under_var_run() {
    let d = tempdir("run");
    assert!(matches!(
        run_path(&d.join("isakmpd.pid")),
        Err(FileError::NotUnderRunDir(_))
    ));
    assert!(matches!(
        PidFile::create(&d.join("isakmpd.pid")),
        Err(FileError::NotUnderRunDir(_))
    ));
    // Escaping by .. is caught by canonicalization.
    assert!(matches!(
        run_path(Path::new("/var/run/../tmp/isakmpd.pid")),
        Err(FileError::NotUnderRunDir(_))
    ));
    assert!(run_path(Path::new("/var/run/..")).is_err());
    let ok = run_path(Path::new("/var/run/isakmpd.pid")).expect("under /var/run");
    assert_eq!(ok.file_name().and_then(|f| f.to_str()), Some("isakmpd.pid"));
    // A symlink into /var/run from elsewhere resolves under it: fine. The reverse is not.
    let link = d.join("link");
    std::os::unix::fs::symlink(&d, &link).expect("symlink");
    assert!(run_path(&link.join("x.pid")).is_err());
    // The rule itself, on a directory we control.
    let sub = d.join("run");
    std::fs::create_dir(&sub).expect("mkdir");
    assert!(run_path_under(&sub.join("a.pid"), &sub).is_ok());
    assert!(run_path_under(&d.join("a.pid"), &sub).is_err());
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn liveness_by_name() {
    let me = std::process::id() as i32;
    let comm = std::fs::read_to_string("/proc/self/comm").expect("comm");
    assert!(is_live_process_named(me, comm.trim_end()));
    assert!(!is_live_process_named(me, "isakmpd"));
    assert!(!is_live_process_named(0, "isakmpd"));
    assert!(!is_live_process_named(-1, "isakmpd"));
}

#[test]
fn pid_file_lifecycle_under_var_run() {
    if !nix::unistd::geteuid().is_root() {
        println!("SKIP pid_file_lifecycle_under_var_run: needs root to write under /var/run");
        return;
    }
    let dir = PathBuf::from(format!("/var/run/isakmpd-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir(&dir).expect("mkdir");
    let path = dir.join("isakmpd.pid");

    // Fresh: written with our pid, removed on drop.
    {
        let pf = PidFile::create(&path).expect("create");
        let text = std::fs::read_to_string(pf.path()).expect("read");
        assert_eq!(text, format!("{}\n", std::process::id()));
    }
    assert!(!path.exists(), "pid file left behind");

    // Stale: a process that has exited.
    let mut dead = Command::new("true").spawn().expect("spawn");
    let dead_pid = dead.id();
    dead.wait().expect("wait");
    std::fs::write(&path, format!("{dead_pid}\n")).expect("write");
    let pf = PidFile::create(&path).expect("stale replaced");
    assert_eq!(
        std::fs::read_to_string(&path).expect("read").trim(),
        std::process::id().to_string()
    );
    drop(pf);

    // Garbage is stale too.
    std::fs::write(&path, "not a pid").expect("write");
    drop(PidFile::create(&path).expect("garbage replaced"));

    // Live, and it looks like the daemon: refused, naming the pid, with its own status.
    let mut live = Command::new("sleep").arg("30").spawn().expect("spawn");
    let live_pid = live.id() as i32;
    // Until it has executed sleep, the new process still carries our name.
    for _ in 0..200 {
        let comm = std::fs::read_to_string(format!("/proc/{live_pid}/comm")).unwrap_or_default();
        if comm.trim_end() == "sleep" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    std::fs::write(&path, format!("{live_pid}\n")).expect("write");
    let e = PidFile::create_named(&path, "sleep").expect_err("live refused");
    assert!(matches!(e, FileError::AlreadyRunning(_, p) if p == live_pid));
    assert!(e.to_string().contains(&format!("pid {live_pid}")));
    assert_eq!(e.exit_status(), EXIT_ALREADY_RUNNING);
    assert_ne!(EXIT_ALREADY_RUNNING, crate::cmdline::EXIT_USAGE);
    assert!(PidFile::check_named(&path, "sleep").is_err());
    // A live process that is not an isakmpd (pid reused): stale.
    let pf = PidFile::create(&path).expect("reused pid replaced");
    drop(pf);
    let _ = live.kill();
    let _ = live.wait();

    // A symlink planted as the pid file is not followed.
    let target = dir.join("target");
    std::fs::write(&target, "keep").expect("write");
    std::os::unix::fs::symlink(&target, &path).expect("symlink");
    drop(PidFile::create(&path).expect("link replaced"));
    assert_eq!(std::fs::read_to_string(&target).expect("read"), "keep");
    let _ = std::fs::remove_dir_all(&dir);
}
