//! The manual pages and the keepalived notify script: the pages render without a mandoc or
//! man(1) warning, isakmpd(8)'s SYNOPSIS and options list name exactly the flags of the
//! daemon's usage message (so the page cannot drift from `privsep/src/cmdline.rs`), and the
//! notify script is valid shell that writes `M active|passive` to the FIFO without ever
//! hanging.

use std::collections::BTreeSet;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn read(rel: &str) -> String {
    let p = root().join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn have(program: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

const PAGES: [&str; 2] = ["man/isakmpd.8", "man/isakmpd.conf.5"];

#[test]
fn pages_lint_without_warnings() {
    if !have("mandoc") {
        eprintln!("SKIPPED manpages: mandoc not installed (apt-get install mandoc)");
        return;
    }
    for page in PAGES {
        let out = Command::new("mandoc")
            .args(["-Tlint", "-W", "warning"])
            .arg(root().join(page))
            .output()
            .expect("run mandoc");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success() && text.is_empty(),
            "mandoc -Tlint -W warning {page}: {}\n{text}",
            out.status
        );
    }
}

#[test]
fn pages_render_with_man() {
    if !have("man") {
        eprintln!("SKIPPED manpages: man not installed (apt-get install man-db)");
        return;
    }
    for page in PAGES {
        let out = Command::new("man")
            .arg("-l")
            .arg(root().join(page))
            .env("MANWIDTH", "80")
            .env("MANPAGER", "cat")
            .env("PAGER", "cat")
            .output()
            .expect("run man");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stderr.is_empty(),
            "man -l {page}: {}\n{stderr}",
            out.status
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("SYNOPSIS") || text.contains("DESCRIPTION"),
            "man -l {page} printed no page:\n{text}"
        );
    }
}

/// A flag and its argument's name (`None` for a flag without one).
type Flag = (char, Option<String>);

/// The flags of `USAGE` in cmdline.rs: `[-46ad]` groups of plain flags and
/// `[-c config-file]` options with an argument.
fn usage_flags(cmdline_rs: &str) -> BTreeSet<Flag> {
    let start = cmdline_rs
        .find("pub const USAGE: &str")
        .expect("USAGE in cmdline.rs");
    let rest = &cmdline_rs[start..];
    let usage = &rest[..rest.find("\";").expect("end of USAGE")];
    let mut flags = BTreeSet::new();
    for group in usage.split('[').skip(1) {
        let group = group.split(']').next().expect("group");
        let group = group.strip_prefix('-').expect("a group starts with -");
        match group.split_once(' ') {
            None => flags.extend(group.chars().map(|c| (c, None))),
            Some((f, arg)) => {
                let mut c = f.chars();
                let flag = c.next().expect("flag letter");
                assert!(c.next().is_none(), "option group {group:?}");
                flags.insert((flag, Some(arg.trim().to_string())));
            }
        }
    }
    flags
}

/// The text of an mdoc section, from its `.Sh` line to the next one.
fn section<'a>(page: &'a str, name: &str) -> &'a str {
    let head = format!(".Sh {name}\n");
    let start = page.find(&head).expect("section") + head.len();
    let rest = &page[start..];
    &rest[..rest.find("\n.Sh ").unwrap_or(rest.len())]
}

/// The flags of the SYNOPSIS's `.Op Fl ...` lines; an argument is the rest of the line
/// with the macros `Ar` and `Ns` taken out (`Ar class Ns = Ns Ar level` is `class=level`).
fn synopsis_flags(page: &str) -> BTreeSet<Flag> {
    let mut flags = BTreeSet::new();
    for line in section(page, "SYNOPSIS").lines() {
        let Some(rest) = line.strip_prefix(".Op Fl ") else {
            continue;
        };
        let mut words = rest.split_whitespace();
        let letters = words.next().expect("flag letters");
        let arg: String = words.filter(|w| *w != "Ar" && *w != "Ns").collect();
        if arg.is_empty() {
            flags.extend(letters.chars().map(|c| (c, None)));
        } else {
            assert_eq!(letters.chars().count(), 1, "{line}");
            let c = letters.chars().next().expect("letter");
            flags.insert((c, Some(arg)));
        }
    }
    flags
}

/// The flags given an entry in the options list: every `Fl x` on an `.It` line.
fn described_flags(page: &str) -> BTreeSet<char> {
    let mut flags = BTreeSet::new();
    for line in section(page, "DESCRIPTION").lines() {
        if let Some(rest) = line.strip_prefix(".It ") {
            let words: Vec<&str> = rest.split_whitespace().collect();
            for w in words.windows(2) {
                if w[0] == "Fl" && w[1].chars().count() == 1 {
                    flags.extend(w[1].chars());
                }
            }
        }
    }
    flags
}

#[test]
fn synopsis_matches_the_usage_message() {
    let usage = usage_flags(&read("privsep/src/cmdline.rs"));
    let page = read("man/isakmpd.8");
    let synopsis = synopsis_flags(&page);
    // The parse itself must have found something, or the comparison proves nothing.
    assert!(usage.contains(&('n', None)), "{usage:?}");
    assert!(usage.contains(&('j', Some("helpers".into()))), "{usage:?}");
    assert!(
        usage.contains(&('D', Some("class=level".into()))),
        "{usage:?}"
    );
    let missing: Vec<&Flag> = usage.difference(&synopsis).collect();
    let extra: Vec<&Flag> = synopsis.difference(&usage).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "isakmpd.8 SYNOPSIS differs from USAGE in privsep/src/cmdline.rs:\n\
         in USAGE only: {missing:?}\nin the SYNOPSIS only: {extra:?}"
    );
    let described = described_flags(&page);
    let undescribed: Vec<char> = usage
        .iter()
        .map(|(c, _)| *c)
        .filter(|c| !described.contains(c))
        .collect();
    assert!(
        undescribed.is_empty(),
        "flags without an entry in isakmpd.8's options list: {undescribed:?}"
    );
}

#[test]
fn keepalived_notify_script_is_valid_shell() {
    let script = root().join("etc/keepalived-notify.sh");
    let out = Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .expect("run bash -n");
    assert!(
        out.status.success(),
        "bash -n {}: {}\n{}",
        script.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Run the notify script on `fifo`, giving up after `timeout` seconds without a reader.
fn notify(fifo: &Path, timeout: &str, args: &[&str]) -> std::process::Output {
    Command::new("bash")
        .arg(root().join("etc/keepalived-notify.sh"))
        .args(args)
        .env("ISAKMPD_FIFO", fifo)
        .env("ISAKMPD_FIFO_TIMEOUT", timeout)
        .output()
        .expect("run keepalived-notify.sh")
}

#[test]
fn keepalived_notify_writes_the_fifo_and_never_hangs() {
    if !have("mkfifo") || !have("timeout") {
        eprintln!("SKIPPED manpages: mkfifo or timeout (coreutils) not installed");
        return;
    }
    let dir = std::env::temp_dir().join(format!("isakmpd-notify-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("mkdir");
    let fifo = dir.join("isakmpd.fifo");

    // No FIFO at all: refused at once, nothing created in its place.
    let out = notify(&fifo, "1", &["INSTANCE", "IKE", "MASTER", "150"]);
    assert!(!out.status.success());
    assert!(!fifo.exists(), "the script created {}", fifo.display());

    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success());

    // A FIFO nobody reads: the script gives up after its timeout instead of blocking.
    let t0 = Instant::now();
    let out = notify(&fifo, "1", &["active"]);
    assert!(!out.status.success());
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "took {:?}",
        t0.elapsed()
    );

    // A reader: MASTER becomes `M active`, BACKUP `M passive`.
    for (state, line) in [("MASTER", "M active\n"), ("BACKUP", "M passive\n")] {
        let path = fifo.clone();
        let reader = std::thread::spawn(move || {
            let mut s = String::new();
            std::fs::File::open(&path)
                .and_then(|mut f| f.read_to_string(&mut s))
                .expect("read the FIFO");
            s
        });
        let out = notify(&fifo, "10", &["INSTANCE", "IKE", state, "150"]);
        if !out.status.success() {
            // Release a reader still waiting in open(2), or the join below would hang.
            // O_NONBLOCK (Linux's value): fails at once if no reader is left.
            let _ = std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(0o4000)
                .open(&fifo);
        }
        let got = reader.join().expect("reader");
        assert!(
            out.status.success(),
            "{state}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(got, line);
    }

    // A usage error is an error, not a silent success.
    assert!(!notify(&fifo, "1", &["sideways"]).status.success());
    let _ = std::fs::remove_dir_all(&dir);
}
