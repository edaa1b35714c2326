//! A short run of the structured fuzzer (see `tests/fuzzer/mod.rs` for what it generates and
//! checks; the long runs are `cargo run --release --example fuzz -- --inputs N`).
//!
//! `CXSTREAM_FUZZ_INPUTS` (default 40,000; 20,000 in a debug build) and `CXSTREAM_FUZZ_SEED` (default: fixed) change the
//! size and seed of this run.

mod fuzzer;

use std::panic::{catch_unwind, AssertUnwindSafe};

use fuzzer::gen::{case, Limits};
use fuzzer::{case_seed, dump, load, panic_message, run_case, Tally};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn fuzz_decode_engine_and_window_close() {
    // A few seconds either way (release ~15k inputs/s, debug ~4k/s).
    let default = if cfg!(debug_assertions) {
        20_000
    } else {
        40_000
    };
    let inputs = env_u64("CXSTREAM_FUZZ_INPUTS", default);
    let seed = env_u64("CXSTREAM_FUZZ_SEED", 12);
    let limits = Limits {
        max_inputs: 1500,
        huge_inputs: false,
    };
    let mut total = Tally::default();
    let mut k = 0;
    while total.inputs < inputs {
        let cs = case_seed(seed, k);
        k += 1;
        let c = case(cs, limits);
        let result = catch_unwind(AssertUnwindSafe(|| run_case(&c)));
        let failure = match result {
            Ok(Ok(t)) => {
                total.add(&t);
                continue;
            }
            Ok(Err(e)) => format!("invariant violated: {e}"),
            Err(p) => format!("panic: {}", panic_message(&*p)),
        };
        let path = std::env::temp_dir().join(format!("cxstream-fuzz-case-{cs}.json"));
        let _ = std::fs::write(&path, dump(&c));
        panic!(
            "fuzz case {cs} (case {k} of seed {seed}) failed: {failure}\n  case: {}\n  re-run: cargo run --release --example fuzz -- --load {} --minimize",
            path.display(),
            path.display()
        );
    }
    assert_eq!(
        total.applied + total.invalid + total.duplicate + total.orphan + total.ticket_exists,
        total.fed
    );
    assert!(total.applied > 0 && total.invalid > 0 && total.duplicate > 0 && total.orphan > 0);
    if inputs >= 20_000 {
        // Enough cases that every mode ran.
        assert!(total.checkpoints > 0 && total.restores > 0 && total.interleave > 0);
    }
    eprintln!("fuzz: {total:?}");
}

/// A failing case written by the fuzzer is read back unchanged (`--load` re-runs exactly it).
#[test]
fn a_dumped_case_loads_back_identically() {
    let limits = Limits {
        max_inputs: 300,
        huge_inputs: false,
    };
    for k in 0..40 {
        let c = case(case_seed(99, k), limits);
        let text = dump(&c);
        let back = load(&text).expect("loads");
        assert_eq!(dump(&back), text, "case {}", c.seed);
    }
}

/// Minimized cases of what the fuzzer found (`tests/fuzz-cases/*.json`), each a bug fixed
/// since: every one must pass.
#[test]
fn fuzz_cases_found_earlier() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-cases");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/fuzz-cases")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let c = load(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let name = path.file_name().unwrap().to_string_lossy();
        match catch_unwind(AssertUnwindSafe(|| run_case(&c))) {
            Ok(Ok(t)) => assert!(t.restores > 0 || t.checkpoint == 0, "{name}: {t:?}"),
            Ok(Err(e)) => panic!("{name} fails: {e}"),
            Err(p) => panic!("{name} panics: {}", panic_message(&*p)),
        }
    }
}
