//! The trainer's fuzz targets (`fuzz/`, docs/fuzzing.md) replayed over their saved corpus and
//! regressions: the same checks libFuzzer runs, here in seconds on stable.

#[path = "../../fuzz/checks/trainer.rs"]
mod checks;
#[path = "../../fuzz/checks/replay.rs"]
mod replay;

const FUZZ_DIR: &str = "../fuzz";

#[test]
fn saved_inputs_pass_their_checks() {
    let targets: [(&str, replay::Check); 3] = [
        ("tweepfake_csv", checks::tweepfake_csv),
        ("cola_tsv", checks::cola_tsv),
        ("predict_input", checks::predict_input),
    ];
    for (target, check) in targets {
        replay::replay(target, check);
    }
}
