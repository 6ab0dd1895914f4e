//! Reading the kernel's XFRM state in tests: our reqids, the packets on our ESP SAs, and the
//! drop counters of `/proc/net/xfrm_stat`.

use crate::netns::Netns;

/// The reqids in the daemon's range (0x4000-0x7fff) in `ip xfrm state|policy` output, with
/// or without `-s` (which writes "16385(0x00004001)" where plain `ip` writes "16385").
pub fn our_reqids(text: &str) -> Vec<u32> {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .windows(2)
        .filter(|w| w[0] == "reqid")
        .filter_map(|w| w[1].split('(').next().and_then(|n| n.parse().ok()))
        .filter(|r| (0x4000..=0x7fff).contains(r))
        .collect()
}

/// `ip -s xfrm <what>` (`state` or `policy`) in `ns`, or the error, for a failure message.
pub fn show(ns: &Netns, what: &str) -> String {
    ns.exec(&["ip", "-s", "xfrm", what]).unwrap_or_else(|e| e)
}

/// Packets counted by the kernel on our ESP SAs in `ns` (`ip -s xfrm state`).
pub fn esp_packets(ns: &Netns) -> u64 {
    our_esp_packets(&show(ns, "state"))
}

/// The packets of the ESP SAs with our reqids in `ip -s xfrm state` output: each SA's
/// `lifetime current` block has a line "N(bytes), M(packets)".
pub fn our_esp_packets(text: &str) -> u64 {
    let mut total = 0;
    let mut ours = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with("src ") {
            ours = false;
        } else if line.starts_with("proto ") {
            ours = line.starts_with("proto esp ") && !our_reqids(line).is_empty();
        } else if ours {
            if let Some(n) = line
                .strip_suffix("(packets)")
                .and_then(|l| l.rsplit(", ").next())
                .and_then(|n| n.trim().parse::<u64>().ok())
            {
                total += n;
            }
        }
    }
    total
}

/// The XFRM error counters of `ns` that are not zero (`/proc/net/xfrm_stat`, per namespace),
/// as "XfrmInNoStates=1 ..."; they say why the kernel dropped an IPsec packet.
pub fn error_counters(ns: &Netns) -> String {
    nonzero_counters(&stat(ns))
}

/// One counter of `/proc/net/xfrm_stat` in `ns` (0 when it cannot be read).
pub fn counter(ns: &Netns, name: &str) -> u64 {
    stat(ns)
        .lines()
        .find_map(|l| {
            let mut w = l.split_whitespace();
            (w.next()? == name).then(|| w.next()?.parse().ok())?
        })
        .unwrap_or(0)
}

/// `/proc/net/xfrm_stat` as `ns` sees it, or the error.
fn stat(ns: &Netns) -> String {
    ns.exec(&["cat", "/proc/net/xfrm_stat"])
        .unwrap_or_else(|e| e)
}

/// "Name value" lines with a value other than 0, joined as "Name=value".
pub fn nonzero_counters(text: &str) -> String {
    let nonzero: Vec<String> = text
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let (name, value) = (w.next()?, w.next()?);
            (value != "0").then(|| format!("{name}={value}"))
        })
        .collect();
    if nonzero.is_empty() {
        "no XFRM errors counted".into()
    } else {
        nonzero.join(" ")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn both_forms_and_only_ours() {
        let text = "proto esp spi 0x1 reqid 16385(0x00004001) mode tunnel\n\
                    tmpl src 1.2.3.4 dst 5.6.7.8 proto esp reqid 16386 mode tunnel\n\
                    proto esp spi 0x2 reqid 7 mode tunnel";
        assert_eq!(super::our_reqids(text), vec![0x4001, 0x4002]);
    }

    #[test]
    fn only_nonzero_counters() {
        let text = "XfrmInError             \t0\nXfrmInNoStates          \t3\nXfrmOutPolBlock 1\n";
        assert_eq!(
            super::nonzero_counters(text),
            "XfrmInNoStates=3 XfrmOutPolBlock=1"
        );
        assert_eq!(
            super::nonzero_counters("XfrmInError 0\n"),
            "no XFRM errors counted"
        );
    }

    #[test]
    fn packets_of_our_esp_sas_only() {
        let sa = |proto: &str, reqid: u32, packets: u32| {
            format!(
                "src 192.0.2.1 dst 192.0.2.2\n\
                 \tproto {proto} spi 0x1 reqid {reqid}(0x0) mode tunnel\n\
                 \tlifetime current:\n\
                 \t  840(bytes), {packets}(packets)\n"
            )
        };
        let text = [
            sa("esp", 0x4001, 10),
            sa("esp", 7, 100),
            sa("ah", 0x4002, 1000),
            sa("esp", 0x4003, 5),
        ]
        .concat();
        assert_eq!(super::our_esp_packets(&text), 15);
    }
}
