//! Every committed fuzz input (`fuzz/seeds/TARGET/*`, the starting corpus,
//! and `fuzz/regressions/TARGET/*`, inputs that once failed) through the
//! same property checks the fuzz targets run, in the normal test suite: a
//! crash found by fuzzing stays fixed without a fuzzer.

#[path = "../../../fuzz/src/lib.rs"]
#[allow(dead_code)]
mod checks;

use std::path::Path;

fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut out = Vec::new();
    for kind in ["seeds", "regressions"] {
        let Ok(dir) = std::fs::read_dir(root.join(kind).join(target)) else {
            continue;
        };
        for entry in dir {
            let path = entry.unwrap().path();
            out.push((path.display().to_string(), std::fs::read(&path).unwrap()));
        }
    }
    out
}

fn run(target: &str, check: fn(&[u8])) {
    let inputs = inputs(target);
    assert!(
        !inputs.is_empty(),
        "no committed inputs for fuzz target {target}"
    );
    for (name, data) in inputs {
        let outcome = std::panic::catch_unwind(|| check(&data));
        assert!(outcome.is_ok(), "fuzz input {name} fails its check");
    }
}

#[test]
fn request_inputs() {
    run("request", checks::request);
}

#[test]
fn canonical_inputs() {
    run("canonical", checks::canonical);
}

#[test]
fn envelope_inputs() {
    run("envelope", checks::envelope);
}

#[test]
fn store_row_inputs() {
    run("store_row", checks::store_row);
}
