//! Every committed seed and regression input through its target, on stable: what the
//! fuzzers found stays fixed, and the targets keep accepting real traffic without a panic.
//! Runs in CI with the rest of `cargo test --workspace --release`.

use std::path::{Path, PathBuf};

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target)
}

/// The files of `dir` (not recursing).
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

fn replay(target: &str, run: fn(&[u8])) {
    let dir = corpus_dir(target);
    let seeds = files(&dir);
    assert!(
        !seeds.is_empty(),
        "{}: no seeds (write them with `cargo test -p isakmp-fuzz --release -- --ignored write_corpus`)",
        dir.display()
    );
    let regressions = files(&dir.join("regressions"));
    for path in seeds.iter().chain(&regressions) {
        let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let outcome = std::panic::catch_unwind(|| run(&data));
        assert!(outcome.is_ok(), "{target}: {} panics", path.display());
    }
}

#[test]
fn every_target_has_a_corpus() {
    for (name, _) in isakmp_fuzz::TARGETS {
        assert!(corpus_dir(name).is_dir(), "no corpus/{name}");
    }
}

macro_rules! replay_test {
    ($name:ident) => {
        #[test]
        fn $name() {
            replay(stringify!($name), isakmp_fuzz::$name);
        }
    };
}

replay_test!(codec);
replay_test!(conf);
replay_test!(fifo);
replay_test!(responder);
replay_test!(ipc);
replay_test!(x509);
