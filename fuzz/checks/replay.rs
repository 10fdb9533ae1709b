//! Replays saved fuzz inputs through a check on stable (the tests that include this run in CI): every
//! file of `fuzz/corpus/<target>/` (inputs the campaign kept for their coverage, and the seeds) and of
//! `fuzz/regressions/<target>/` (inputs that once broke a check).

use std::path::{Path, PathBuf};

/// The inputs saved for `target`, sorted; at least the corpus must exist, so a renamed target cannot
/// replay nothing and pass.
pub fn inputs(target: &str) -> Vec<PathBuf> {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join(super::FUZZ_DIR);
    let mut files = Vec::new();
    for kind in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(fuzz.join(kind).join(target)) else { continue };
        files.extend(entries.map(|e| e.expect("a readable directory entry").path()).filter(|p| p.is_file()));
    }
    files.sort();
    assert!(!files.is_empty(), "no saved inputs for fuzz target {target} under {}", fuzz.display());
    files
}

/// A fuzz target's check: panics when an invariant breaks.
pub type Check = fn(&[u8]);

/// Runs `check` on every saved input of `target`, naming the input that fails.
pub fn replay(target: &str, check: Check) {
    for path in inputs(target) {
        let data = std::fs::read(&path).expect("a readable input");
        if std::panic::catch_unwind(|| check(&data)).is_err() {
            panic!("fuzz target {target} fails on {}", path.display());
        }
    }
}
