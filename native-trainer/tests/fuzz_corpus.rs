//! The trainer's fuzz targets (`fuzz/`, docs/fuzzing.md) replayed over their saved corpus and
//! regressions: the same checks libFuzzer runs, here in seconds on stable.

#[path = "../../fuzz/checks/trainer.rs"]
mod checks;
#[path = "../../fuzz/checks/replay.rs"]
mod replay;

const FUZZ_DIR: &str = "../fuzz";
use replay::replay;

#[test]
fn tweepfake_csv() {
    replay("tweepfake_csv", checks::tweepfake_csv);
}

#[test]
fn cola_tsv() {
    replay("cola_tsv", checks::cola_tsv);
}

#[test]
fn predict_input() {
    replay("predict_input", checks::predict_input);
}
