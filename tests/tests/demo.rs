//! `etc/demo.sh`, the README's demonstration, runs: both gateways bring up phase 1 and 2
//! from the example configurations, and it leaves no namespace or run directory behind.

use std::process::Command;

#[test]
fn demo_script_brings_up_both_phases() {
    e2e::require_env!();
    let script = e2e::pair::etc_dir().join("demo.sh");
    let out = Command::new("bash")
        .arg(&script)
        .env("ISAKMPD", e2e::daemon::binary())
        .output()
        .expect("run etc/demo.sh");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    let both = format!("--- stdout:\n{stdout}\n--- stderr:\n{stderr}");
    assert!(
        out.status.success(),
        "{}: {}\n{both}",
        script.display(),
        out.status
    );
    for line in [
        "phase 1 established with peer-west (192.0.2.2:500)",
        "phase 2 established for IPsec-east-west with peer-west",
        "phase 1 established with peer-east (192.0.2.1:500)",
        "phase 2 established for IPsec-west-east with peer-east",
        "both gateways have phase 1 and phase 2 up",
    ] {
        assert!(stdout.contains(line), "{line:?} missing\n{both}");
    }
    let netns = e2e::netns::run(&["ip", "netns", "list"]).expect("ip netns list");
    assert!(!netns.contains("isakmpd-demo-"), "namespaces left: {netns}");
    assert!(
        !std::path::Path::new("/var/run/isakmpd-demo").exists(),
        "/var/run/isakmpd-demo left behind"
    );
}
