//! Reading `ip xfrm` output in tests.

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

#[cfg(test)]
mod tests {
    #[test]
    fn both_forms_and_only_ours() {
        let text = "proto esp spi 0x1 reqid 16385(0x00004001) mode tunnel\n\
                    tmpl src 1.2.3.4 dst 5.6.7.8 proto esp reqid 16386 mode tunnel\n\
                    proto esp spi 0x2 reqid 7 mode tunnel";
        assert_eq!(super::our_reqids(text), vec![0x4001, 0x4002]);
    }
}
