//! Transactions of the FIFO `C` command: all or nothing, force, add/rmv, rm, rms.

use ike::conf::{Conf, TransactionId};

fn base() -> Conf {
    Conf::parse("[Phase 2]\nConnections=A,B\n[A]\nPhase=2\n[B]\nPhase=2\n").unwrap()
}

#[test]
fn nothing_visible_until_commit() {
    let mut c = base();
    let t = c.begin();
    c.set(t, "New", "Tag", "v", false, false).unwrap();
    assert_eq!(c.get_str("New", "Tag"), None);
    c.end(t, true).unwrap();
    assert_eq!(c.get_str("New", "Tag"), Some("v"));
    assert!(c.dump().contains("[New]\nTag=\tv\n"));
}

#[test]
fn abort_discards() {
    let mut c = base();
    let before = c.dump();
    let t = c.begin();
    c.set(t, "New", "Tag", "v", false, false).unwrap();
    c.remove_section(t, "A").unwrap();
    c.end(t, false).unwrap();
    assert_eq!(c.dump(), before);
    assert_eq!(
        c.end(t, true).unwrap_err().line,
        0,
        "a closed transaction is gone"
    );
}

#[test]
fn set_without_force_conflicts_and_fails_everything() {
    let mut c = base();
    let before = c.dump();
    let t = c.begin();
    c.set(t, "Other", "X", "1", false, false).unwrap();
    c.set(t, "A", "Phase", "1", false, false).unwrap();
    let e = c.end(t, true).unwrap_err();
    assert_eq!(e.line, 2, "the second operation failed");
    assert!(e.reason.contains("force"), "{e}");
    assert_eq!(
        c.dump(),
        before,
        "atomic: the first set is not applied either"
    );
    assert_eq!(c.get_str("Other", "X"), None);
}

#[test]
fn a_conflict_over_a_preshared_key_does_not_repeat_the_key() {
    let mut c = Conf::parse("[peer]\nAuthentication=old-secret-key\n").unwrap();
    let t = c.begin();
    c.set(t, "peer", "Authentication", "new-secret-key", false, false)
        .unwrap();
    let e = c.end(t, true).unwrap_err();
    assert!(e.reason.contains("force"), "{e}");
    assert!(!e.to_string().contains("secret-key"), "{e}");
    // Overwriting the key (and blanking it) keeps the visible behaviour.
    let t = c.begin();
    c.set(t, "peer", "Authentication", "k2", true, false)
        .unwrap();
    c.end(t, true).unwrap();
    assert_eq!(c.get_str("peer", "Authentication"), Some("k2"));
    assert_eq!(
        c.with_tag_blanked("Authentication")
            .get_str("peer", "Authentication"),
        Some("")
    );
}

#[test]
fn force_overrides() {
    let mut c = base();
    let t = c.begin();
    c.set(t, "a", "PHASE", "1", true, false).unwrap();
    c.end(t, true).unwrap();
    assert_eq!(c.get_str("A", "Phase"), Some("1"));
    // The original spelling of section and tag is kept.
    assert!(c.dump().contains("[A]\nPhase=\t1\n"), "{}", c.dump());
}

#[test]
fn set_over_a_builtin_default_needs_no_force() {
    let mut c = base();
    let t = c.begin();
    c.set(t, "General", "Retransmits", "9", false, false)
        .unwrap();
    c.end(t, true).unwrap();
    assert_eq!(c.get_num("General", "Retransmits"), Some(9));
    // A default-marked set never replaces anything.
    let t = c.begin();
    c.set(t, "General", "Retransmits", "1", false, true)
        .unwrap();
    c.set(t, "General", "Exchange-max-time", "5", false, true)
        .unwrap();
    c.set(t, "Fresh", "Tag", "d", false, true).unwrap();
    c.end(t, true).unwrap();
    assert_eq!(c.get_num("General", "Retransmits"), Some(9));
    assert_eq!(c.get_num("General", "Exchange-max-time"), Some(120));
    assert_eq!(c.get_str("Fresh", "Tag"), Some("d"));
    assert!(c.is_default("Fresh", "Tag"));
    assert!(!c.dump().contains("Fresh"), "defaults are not dumped");
}

#[test]
fn rm_and_rms() {
    let mut c = base();
    let t = c.begin();
    c.remove(t, "A", "Phase").unwrap();
    c.remove_section(t, "B").unwrap();
    c.end(t, true).unwrap();
    assert_eq!(c.get_str("A", "Phase"), None);
    assert!(!c.has_section("B"));
    assert!(!c.sections().contains(&"B"));
    // Removing what is not there is harmless, as in isakmpd.
    let t = c.begin();
    c.remove(t, "Nope", "Nope").unwrap();
    c.remove_section(t, "Nope").unwrap();
    c.end(t, true).unwrap();
}

#[test]
fn rm_hides_a_default_and_set_restores() {
    let mut c = Conf::new();
    let t = c.begin();
    c.remove(t, "General", "Retransmits").unwrap();
    c.remove_section(t, "3DES-SHA").unwrap();
    c.end(t, true).unwrap();
    assert_eq!(c.get_str("General", "Retransmits"), None);
    assert!(!c.has_section("3DES-SHA"));
    assert_eq!(c.get_str("3DES-SHA", "HASH_ALGORITHM"), None);
    assert_eq!(c.get_str("General", "Exchange-max-time"), Some("120"));
    let t = c.begin();
    c.set(t, "General", "Retransmits", "4", false, false)
        .unwrap();
    c.end(t, true).unwrap();
    assert_eq!(c.get_num("General", "Retransmits"), Some(4));
}

#[test]
fn add_and_rmv_on_lists() {
    let mut c = base();
    let t = c.begin();
    c.add(t, "Phase 2", "Connections", "C").unwrap();
    c.add(t, "Phase 2", "Connections", "A").unwrap(); // already there: unchanged
    c.add(t, "Phase 2", "Passive-connections", "P").unwrap(); // new list
    c.end(t, true).unwrap();
    assert_eq!(
        c.get_list("Phase 2", "Connections").unwrap(),
        vec!["A", "B", "C"]
    );
    assert_eq!(
        c.get_list("Phase 2", "Passive-connections").unwrap(),
        vec!["P"]
    );

    let t = c.begin();
    c.rmv(t, "Phase 2", "Connections", "B").unwrap();
    c.rmv(t, "Phase 2", "Connections", "Z").unwrap(); // absent: harmless
    c.rmv(t, "Phase 2", "Passive-connections", "P").unwrap(); // empties: tag removed
    c.end(t, true).unwrap();
    assert_eq!(
        c.get_list("Phase 2", "Connections").unwrap(),
        vec!["A", "C"]
    );
    assert_eq!(c.get_str("Phase 2", "Passive-connections"), None);
}

#[test]
fn operations_see_earlier_ones_of_the_same_transaction() {
    let mut c = base();
    let t = c.begin();
    c.set(t, "N", "L", "x", false, false).unwrap();
    c.add(t, "N", "L", "y").unwrap();
    c.set(t, "N", "L", "z", false, false).unwrap(); // conflicts with the first set
    assert!(c.end(t, true).is_err());
    let t = c.begin();
    c.set(t, "N", "L", "x", false, false).unwrap();
    c.add(t, "N", "L", "y").unwrap();
    c.end(t, true).unwrap();
    assert_eq!(c.get_str("N", "L"), Some("x,y"));
}

#[test]
fn concurrent_transactions_are_independent() {
    let mut c = base();
    let t1 = c.begin();
    let t2 = c.begin();
    assert_ne!(t1, t2);
    c.set(t1, "S", "One", "1", false, false).unwrap();
    c.set(t2, "S", "Two", "2", false, false).unwrap();
    c.end(t2, true).unwrap();
    assert_eq!(c.get_str("S", "One"), None);
    assert_eq!(c.get_str("S", "Two"), Some("2"));
    c.end(t1, true).unwrap();
    assert_eq!(c.get_str("S", "One"), Some("1"));
}

#[test]
fn malformed_operations_are_refused_at_once() {
    let mut c = base();
    let t = c.begin();
    assert!(c.set(t, "S]", "T", "v", false, false).is_err());
    assert!(c.set(t, "S", "T T", "v", false, false).is_err());
    assert!(c.set(t, "S", "#T", "v", false, false).is_err());
    assert!(c.set(t, "S", "T", "a\nb", false, false).is_err());
    assert!(c.set(t, "S", "T", "ends\\", false, false).is_err());
    assert!(c.add(t, "S", "T", "a,b").is_err());
    assert!(c.set(t, "", "T", "v", false, false).is_err());
    assert!(c
        .set(TransactionId(999), "S", "T", "v", false, false)
        .is_err());
    c.end(t, true).unwrap();
    assert_eq!(c.sections().len(), 3);
}
