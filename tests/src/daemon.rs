//! isakmpd processes started by a test inside a namespace, with their stderr log collected.

use crate::netns::Netns;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The daemon binary of this workspace's build (next to the test executable's `deps/`).
pub fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("ISAKMPD_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_default();
    profile_dir.join("isakmpd")
}

/// A running daemon. Killed and cleaned up on drop.
pub struct Daemon {
    pub name: String,
    /// Its private directory under /var/run: configuration, pid file, FIFO, report.
    pub dir: PathBuf,
    child: Option<Child>,
    logs: Arc<Mutex<Vec<String>>>,
}

impl Daemon {
    /// The run directory for daemon `tag` of this test process.
    pub fn dir_for(tag: &str) -> PathBuf {
        PathBuf::from(format!("/var/run/fzike{}{tag}", std::process::id()))
    }

    /// Write `conf` (mode 0600) and start `isakmpd -d` with `args` inside `ns`.
    pub fn start(ns: &Netns, tag: &str, conf: &str, args: &[&str]) -> Result<Daemon, String> {
        Self::start_with_files(ns, tag, conf, &[], args)
    }

    /// As [`Daemon::start`], with more files (keys, say) written next to the configuration,
    /// each mode 0600, before the daemon starts: `(file name, contents)`.
    pub fn start_with_files(
        ns: &Netns,
        tag: &str,
        conf: &str,
        files: &[(&str, &[u8])],
        args: &[&str],
    ) -> Result<Daemon, String> {
        let dir = Self::dir_for(tag);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let conf_bytes: (&str, &[u8]) = ("isakmpd.conf", conf.as_bytes());
        for (name, bytes) in std::iter::once(&conf_bytes).chain(files) {
            let path = dir.join(name);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| format!("{}: {e}", parent.display()))?;
            }
            std::fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
        Self::spawn(ns, tag, &dir, args)
    }

    /// The whole log, one line per line, for assertion messages.
    pub fn log_text(&self) -> String {
        self.logs().join("\n")
    }

    /// Start the daemon with exactly `args` (after `-d`), for tests of the command line.
    pub fn spawn(ns: &Netns, tag: &str, dir: &Path, args: &[&str]) -> Result<Daemon, String> {
        let p = |f: &str| dir.join(f).to_string_lossy().into_owned();
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &ns.name])
            .arg(binary())
            .arg("-d");
        if !args.contains(&"-c") {
            cmd.args(["-c", &p("isakmpd.conf")]);
        }
        if !args.contains(&"-i") {
            cmd.args(["-i", &p("isakmpd.pid")]);
        }
        if !args.contains(&"-f") {
            cmd.args(["-f", &p("isakmpd.fifo")]);
        }
        if !args.contains(&"-R") {
            cmd.args(["-R", &p("isakmpd.report")]);
        }
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("starting {}: {e}", binary().display()))?;
        let logs = Arc::new(Mutex::new(Vec::new()));
        if let Some(err) = child.stderr.take() {
            let sink = Arc::clone(&logs);
            let name = tag.to_string();
            std::thread::spawn(move || {
                for line in BufReader::new(err).lines().map_while(Result::ok) {
                    if std::env::var_os("E2E_LOG").is_some() {
                        // Wall-clock time, to line the daemons up with each other and
                        // with `ping -D`.
                        let t = std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .unwrap_or_default();
                        eprintln!("{}.{:03} [{name}] {line}", t.as_secs(), t.subsec_millis());
                    }
                    if let Ok(mut l) = sink.lock() {
                        l.push(line);
                    }
                }
            });
        }
        Ok(Daemon {
            name: tag.to_string(),
            dir: dir.to_path_buf(),
            child: Some(child),
            logs,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().map(|l| l.clone()).unwrap_or_default()
    }

    pub fn log_count(&self, needle: &str) -> usize {
        self.logs().iter().filter(|l| l.contains(needle)).count()
    }

    /// Wait until the log holds `needle` at least `count` times.
    pub fn wait_log(&self, needle: &str, count: usize, timeout: Duration) -> bool {
        crate::wait_until(timeout, || self.log_count(needle) >= count)
    }

    /// The daemon exited: its status, if it has.
    pub fn try_exit(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Wait up to `timeout` for the daemon to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let mut status = None;
        crate::wait_until(timeout, || {
            status = self.try_exit();
            status.is_some()
        });
        status
    }

    /// The state report (SIGUSR1), once written whole.
    pub fn report(&self) -> String {
        let path = self.dir.join("isakmpd.report");
        let _ = std::fs::remove_file(&path);
        self.signal("USR1");
        let mut text = String::new();
        crate::wait_until(std::time::Duration::from_secs(10), || {
            text = std::fs::read_to_string(&path).unwrap_or_default();
            text.contains("Pending timers:")
        });
        text
    }

    pub fn signal(&self, sig: &str) {
        let _ = Command::new("kill")
            .args([&format!("-{sig}"), &self.pid().to_string()])
            .status();
    }

    /// Processes whose parent is `pid` (from /proc).
    pub fn children_of(pid: u32) -> Vec<u32> {
        let mut out = Vec::new();
        let Ok(rd) = std::fs::read_dir("/proc") else {
            return out;
        };
        for e in rd.flatten() {
            let Some(p) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
                continue;
            };
            // The command name is in parentheses and may hold spaces: parse after the last ')'.
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok());
            if ppid == Some(pid) {
                out.push(p);
            }
        }
        out.sort();
        out
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            if c.try_wait().ok().flatten().is_none() {
                let _ = Command::new("kill")
                    .args(["-TERM", &c.id().to_string()])
                    .status();
                let done = crate::wait_until(Duration::from_secs(5), || {
                    c.try_wait().ok().flatten().is_some()
                });
                if !done {
                    let _ = c.kill();
                }
            }
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
