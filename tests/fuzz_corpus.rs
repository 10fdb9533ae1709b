//! The core's fuzz targets (`fuzz/`, docs/fuzzing.md) replayed over their saved corpus and regressions:
//! the same checks libFuzzer runs, here in seconds on stable.

#[allow(dead_code)] // the trainer's checks are replayed by native-trainer/tests/fuzz_corpus.rs
#[path = "../fuzz/checks/core.rs"]
mod checks;
#[path = "../fuzz/checks/replay.rs"]
mod replay;

const FUZZ_DIR: &str = "fuzz";

#[test]
fn saved_inputs_pass_their_checks() {
    let targets: [(&str, replay::Check); 5] = [
        ("config", checks::config),
        ("manifest", checks::manifest),
        ("tokenizer_json", checks::tokenizer_json),
        ("tokenize", checks::tokenize),
        ("weights", checks::weights),
    ];
    for (target, check) in targets {
        replay::replay(target, check);
    }
}
