#![no_main]
#[allow(dead_code)] // each target calls one of the checks
#[path = "../checks/trainer.rs"]
mod checks;
libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::tweepfake_csv(data));
