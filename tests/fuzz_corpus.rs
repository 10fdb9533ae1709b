//! The core's fuzz targets (`fuzz/`, docs/fuzzing.md) replayed over their saved corpus and regressions:
//! the same checks libFuzzer runs, here in seconds on stable.

#[allow(dead_code)] // the trainer's checks are replayed by native-trainer/tests/fuzz_corpus.rs
#[path = "../fuzz/checks/core.rs"]
mod checks;
#[path = "../fuzz/checks/replay.rs"]
mod replay;

const FUZZ_DIR: &str = "fuzz";
use replay::replay;

#[test]
fn config() {
    replay("config", checks::config);
}

#[test]
fn manifest() {
    replay("manifest", checks::manifest);
}

#[test]
fn tokenizer_json() {
    replay("tokenizer_json", checks::tokenizer_json);
}

#[test]
fn tokenize() {
    replay("tokenize", checks::tokenize);
}

#[test]
fn weights() {
    replay("weights", checks::weights);
}
