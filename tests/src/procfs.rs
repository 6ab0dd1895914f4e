//! What /proc says about the daemon's processes: their role, their privileges, their memory.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// A field of /proc/<pid>/status (`key` with its colon, e.g. `"Uid:"`), trimmed.
pub fn status_field(pid: u32, key: &str) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .map(|v| v.trim().to_string())
}

/// /proc/<pid>/cmdline with the NULs as spaces ("" for a zombie or a gone process).
pub fn cmdline(pid: u32) -> String {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    String::from_utf8_lossy(&raw)
        .trim_end_matches('\0')
        .replace('\0', " ")
}

/// Live children of `parent` whose command line starts with `isakmpd: <role>` (`child` or
/// `helper`), sorted by pid.
pub fn role_children(parent: u32, role: &str) -> Vec<u32> {
    let prefix = format!("isakmpd: {role}");
    crate::daemon::Daemon::children_of(parent)
        .into_iter()
        .filter(|&p| {
            !status_field(p, "State:").is_some_and(|s| s.starts_with('Z'))
                && cmdline(p).starts_with(&prefix)
        })
        .collect()
}

/// Everything that shows `pid` is not confined as DESIGN.md section 1 asks: uid and gid not
/// 0, every capability set empty, no_new_privs set, root directory /var/empty and that
/// directory empty. Empty when confined.
pub fn confinement_problems(pid: u32) -> Vec<String> {
    let mut out = Vec::new();
    let field = |k: &str| status_field(pid, k).unwrap_or_else(|| "<missing>".into());
    for key in ["Uid:", "Gid:"] {
        let v = field(key);
        let ids: Vec<&str> = v.split_whitespace().collect();
        if ids.len() != 4 || ids.contains(&"0") {
            out.push(format!("{key} {v}"));
        }
    }
    for key in ["CapEff:", "CapPrm:", "CapInh:", "CapAmb:", "CapBnd:"] {
        let v = field(key);
        if v != "0000000000000000" {
            out.push(format!("{key} {v}"));
        }
    }
    let v = field("NoNewPrivs:");
    if v != "1" {
        out.push(format!("NoNewPrivs: {v}"));
    }
    match std::fs::read_link(format!("/proc/{pid}/root")) {
        Ok(root) if root == Path::new("/var/empty") => {
            // And it is empty: nothing to open, execute or write to in there.
            match std::fs::read_dir(format!("/proc/{pid}/root")) {
                Ok(mut entries) => {
                    if let Some(Ok(e)) = entries.next() {
                        out.push(format!("root /var/empty holds {:?}", e.file_name()));
                    }
                }
                Err(e) => out.push(format!("root: {e}")),
            }
        }
        Ok(root) => out.push(format!("root {}", root.display())),
        Err(e) => out.push(format!("root: {e}")),
    }
    out
}

/// Does `needle` occur anywhere in the readable memory of `pid`? Reads every readable
/// mapping of /proc/<pid>/maps through /proc/<pid>/mem; mappings the kernel will not let us
/// read ([vvar], [vsyscall], guard pages) are skipped. Returns the number of bytes searched
/// along with the answer, so a caller can tell a search that read nothing from a clean one.
pub fn memory_contains(pid: u32, needle: &[u8]) -> Result<(bool, u64), String> {
    assert!(!needle.is_empty());
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .map_err(|e| format!("/proc/{pid}/maps: {e}"))?;
    let mem =
        File::open(format!("/proc/{pid}/mem")).map_err(|e| format!("/proc/{pid}/mem: {e}"))?;
    const CHUNK: u64 = 1 << 20;
    let mut searched = 0u64;
    let mut buf = vec![0u8; CHUNK as usize + needle.len()];
    for line in maps.lines() {
        let mut parts = line.split_whitespace();
        let (Some(range), Some(perms)) = (parts.next(), parts.next()) else {
            continue;
        };
        if !perms.starts_with('r') {
            continue;
        }
        let Some((start, end)) = range.split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(end)) = (u64::from_str_radix(start, 16), u64::from_str_radix(end, 16))
        else {
            continue;
        };
        // Read in chunks that overlap by needle.len() - 1, so a match across a chunk
        // boundary is still seen.
        let mut at = start;
        while at < end {
            let want = (end - at).min(CHUNK + needle.len() as u64 - 1) as usize;
            let n = match mem.read_at(&mut buf[..want], at) {
                Ok(n) if n > 0 => n,
                _ => break,
            };
            searched += n as u64;
            if find(&buf[..n], needle) {
                return Ok((true, searched));
            }
            if n < want || at + (n as u64) >= end {
                break;
            }
            at += CHUNK;
        }
    }
    Ok((false, searched))
}

fn find(hay: &[u8], needle: &[u8]) -> bool {
    let first = needle[0];
    let mut i = 0;
    while i + needle.len() <= hay.len() {
        match hay[i..=hay.len() - needle.len()]
            .iter()
            .position(|&b| b == first)
        {
            None => return false,
            Some(off) => {
                let at = i + off;
                if &hay[at..at + needle.len()] == needle {
                    return true;
                }
                i = at + 1;
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_at_edges() {
        assert!(find(b"abc", b"abc"));
        assert!(find(b"xxabc", b"abc"));
        assert!(find(b"abcxx", b"abc"));
        assert!(!find(b"ab", b"abc"));
        assert!(!find(b"abxabyab", b"abc"));
    }

    #[test]
    fn test_process_is_not_confined() {
        // We are not chrooted to /var/empty, whoever runs us: the check must say so.
        let problems = confinement_problems(std::process::id());
        assert!(
            problems.iter().any(|p| p.starts_with("root ")),
            "{problems:?}"
        );
    }

    #[test]
    fn finds_a_secret_in_our_own_memory() {
        // The search must see the heap: put a fresh string there and look for it in /proc/self.
        let secret: Vec<u8> = format!(
            "e2e-needle-{}-{:?}",
            std::process::id(),
            std::time::Instant::now()
        )
        .into_bytes();
        let (found, searched) = memory_contains(std::process::id(), &secret).expect("search");
        assert!(found, "searched {searched} bytes");
    }
}
