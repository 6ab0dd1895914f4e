//! Files the daemon refuses, seen from outside: a configuration others may read, and a pid
//! file that names a running isakmpd.

use e2e::daemon::Daemon;
use e2e::netns::Netns;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

/// Removes a directory the test made, however the test ends.
struct RmDir(PathBuf);

impl Drop for RmDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The east example, mode 0644: refused at start, exit status 1, and the message names the
/// file and its mode.
#[test]
fn config_mode_refused() {
    e2e::require_env!();
    let conf = e2e::pair::example_conf("east").expect("example configuration");
    let ns = Netns::new("cm").expect("namespace");
    let dir = Daemon::dir_for("cm");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("run directory");
    let _rm = RmDir(dir.clone());
    let path = dir.join("isakmpd.conf");
    std::fs::write(&path, conf).expect("write the configuration");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod 0644");
    let mut d = Daemon::spawn(&ns, "cm", &dir, &["-n", "-v"]).expect("spawn");
    let status = d.wait_exit(Duration::from_secs(10));
    // Let the log reader take the last line.
    std::thread::sleep(Duration::from_millis(200));
    let log = d.log_text();
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(1),
        "status {status:?}\n{log}"
    );
    let line = d
        .logs()
        .into_iter()
        .find(|l| l.contains(&path.display().to_string()))
        .unwrap_or_else(|| panic!("no message names {}\n{log}", path.display()));
    assert!(line.contains("0644"), "the mode is not named: {line:?}");
    assert!(
        Daemon::children_of(d.pid()).is_empty(),
        "a refused daemon started processes"
    );
}

/// Two daemons in two namespaces with the same `-i`: the first runs, the second exits with
/// status 2 and names the first's pid; the first keeps running.
#[test]
fn pidfile_conflict() {
    e2e::require_env!();
    let shared = Daemon::dir_for("pf");
    let _ = std::fs::remove_dir_all(&shared);
    std::fs::create_dir_all(&shared).expect("shared directory");
    let _rm = RmDir(shared.clone());
    let pidfile = shared.join("isakmpd.pid").display().to_string();
    let conf = "[General]\nRetransmits=\t\t3\n";
    let ns1 = Netns::new("pf1").expect("namespace");
    let ns2 = Netns::new("pf2").expect("namespace");
    let mut first = Daemon::start(&ns1, "pf1", conf, &["-n", "-i", &pidfile]).expect("start");
    let pid = first.pid();
    let written = e2e::wait_until(Duration::from_secs(10), || {
        std::fs::read_to_string(&pidfile).is_ok_and(|s| s.trim() == pid.to_string())
    });
    assert!(
        written,
        "first daemon (pid {pid}) did not write {pidfile}: {:?} (status {:?})\n{}",
        std::fs::read_to_string(&pidfile),
        first.try_exit(),
        first.log_text()
    );
    let mut second = Daemon::start(&ns2, "pf2", conf, &["-n", "-i", &pidfile]).expect("start");
    let status = second.wait_exit(Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(200));
    let log = second.log_text();
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(2),
        "second daemon: status {status:?}\n{log}"
    );
    assert!(
        log.contains(&pid.to_string()),
        "second daemon does not name the running pid {pid}:\n{log}"
    );
    assert!(first.try_exit().is_none(), "the first daemon exited");
    assert_eq!(
        std::fs::read_to_string(&pidfile)
            .map(|s| s.trim().to_string())
            .ok(),
        Some(pid.to_string()),
        "the second daemon touched the pid file"
    );
}
