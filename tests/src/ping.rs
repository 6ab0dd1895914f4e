//! `ping` between two addresses inside a test's namespace, counted.

use std::process::Command;
use std::time::Duration;

/// Ping `to` from the address `from` inside the namespace named `ns`: (sent, received).
/// A reply may take up to 2 s (the QEMU guest is slow). With `E2E_LOG` set, every reply
/// and every missing one is printed with its wall-clock time, to place a loss against the
/// daemons' stamped logs.
pub fn ping(ns: &str, from: &str, to: &str, count: u32, interval: Duration) -> (u32, u32) {
    let verbose = std::env::var_os("E2E_LOG").is_some();
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "ping", "-n"])
        .arg(if verbose { "-DO" } else { "-q" })
        .args(["-c", &count.to_string()])
        .args(["-i", &format!("{:.2}", interval.as_secs_f64())])
        .args(["-W", "2", "-I", from, to])
        .output();
    // ping exits 1 when a reply is missing; its summary is on stdout all the same.
    let text = out
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    if verbose {
        eprintln!("ping {from} -> {to} in {ns}:\n{text}");
    }
    summary(&text)
}

/// `ping`'s summary line: "N packets transmitted, M received, ...".
pub fn summary(text: &str) -> (u32, u32) {
    let line = text
        .lines()
        .find(|l| l.contains("packets transmitted"))
        .unwrap_or("");
    let mut nums = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .filter_map(|s| s.parse::<u32>().ok());
    (nums.next().unwrap_or(0), nums.next().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    #[test]
    fn summary_with_loss_and_without_output() {
        let t = "--- 10.2.0.1 ping statistics ---\n\
                 5 packets transmitted, 4 received, 20% packet loss, time 804ms\n";
        assert_eq!(super::summary(t), (5, 4));
        assert_eq!(super::summary(""), (0, 0));
    }
}
