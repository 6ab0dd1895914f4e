//! pluto's updown script: run by the (root) parent with the PLUTO_* variables when a
//! connection's tunnel comes up (prepare, route, up) and when it goes (down, unroute).

use e2e::pair::*;
use e2e::updown::UpdownRecorder;
use std::time::Duration;

#[test]
fn updown_script_records_verbs_and_variables() {
    e2e::require_env!();
    let recorder = UpdownRecorder::new(
        "updown",
        "$PLUTO_VERB|$PLUTO_CONNECTION|$PLUTO_ME|$PLUTO_PEER|$PLUTO_MY_CLIENT|$PLUTO_PEER_CLIENT|$PLUTO_MY_CLIENT_MASK|$PLUTO_VERSION",
        "echo \"updown ran $PLUTO_VERB\"\n",
    )
    .expect("updown script");
    let script = &recorder.script;
    let east = example_conf("east").expect("example").replacen(
        &format!("[{EAST_CONNECTION}]\n"),
        &format!("[{EAST_CONNECTION}]\nUpdown=\t\t{}\n", script.display()),
        1,
    );
    assert!(
        east.contains("Updown="),
        "the example has no [{EAST_CONNECTION}] section"
    );
    let west = example_conf("west").expect("example");
    let mut pair =
        Pair::start("ud", (&east, &[]), (&west, &[]), &["-n", "-v", "-j", "1"]).expect("pair");
    pair.wait_up(Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("{e}\n{}", pair.logs()));
    let lines = |n: usize| recorder.wait(Duration::from_secs(10), |t| t.lines().count() >= n);
    let up = lines(3);
    let want_tail = format!(
        "|{EAST_CONNECTION}|{EAST_ADDR}|{WEST_ADDR}|10.1.0.0/16|10.2.0.0/16|255.255.0.0|1.1"
    );
    let expected: Vec<String> = ["prepare-client", "route-client", "up-client"]
        .iter()
        .map(|v| format!("{v}{want_tail}"))
        .collect();
    assert_eq!(up.lines().collect::<Vec<_>>(), expected, "{}", pair.logs());
    assert!(
        pair.east.log_count("updown ran up-client") == 1,
        "script output not logged:\n{}",
        pair.logs()
    );
    // SIGTERM: the tunnel goes, and the down verbs run before the daemon exits.
    pair.east.signal("TERM");
    assert!(
        pair.east.wait_exit(Duration::from_secs(10)).is_some(),
        "east did not exit"
    );
    let all = lines(5);
    let down: Vec<&str> = all.lines().skip(3).collect();
    let expected: Vec<String> = ["down-client", "unroute-client"]
        .iter()
        .map(|v| format!("{v}{want_tail}"))
        .collect();
    assert_eq!(down, expected, "{}", pair.logs());
}
