//! Output folders are consistent or absent after a failed write: write failures are injected with the
//! `fail` crate's failpoint `output::write` (compiled into the library for tests only). One test function
//! runs the cases in order, since failpoints are global to the process (this file is a process of its own).

use std::path::Path;

use native_trainer::output::{prepare_output_dir, replace_dir, write_atomic};

/// Every entry under `dir`, hidden ones included, as (relative path, contents).
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let name = path.strip_prefix(dir).unwrap().display().to_string();
            if path.is_dir() {
                found.push((format!("{name}/"), Vec::new()));
                stack.push(path);
            } else {
                found.push((name, std::fs::read(&path).unwrap()));
            }
        }
    }
    found.sort();
    found
}

#[test]
fn failed_writes_leave_the_old_outputs_whole_and_no_debris() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();

    // A single file: a failed write keeps the old contents and leaves no temporary.
    let file = out.join("eval_results.txt");
    write_atomic(&file, b"old results").unwrap();
    fail::cfg("output::write", "return").unwrap();
    let err = write_atomic(&file, b"new results that do not fit").unwrap_err();
    assert!(format!("{err:#}").contains("injected write failure"), "{err:#}");
    assert_eq!(snapshot(out), [("eval_results.txt".to_string(), b"old results".to_vec())]);

    // A folder swapped whole: the second file's write fails, so the old folder stays as it was.
    fail::remove("output::write");
    let model = out.join("model");
    replace_dir(&model, |m| {
        write_atomic(&m.join("model.int8.safetensors"), b"old weights")?;
        write_atomic(&m.join("manifest.json"), b"old manifest")
    })
    .unwrap();
    let before = snapshot(out);
    fail::cfg("output::write", "1*off->return").unwrap();
    let err = replace_dir(&model, |m| {
        write_atomic(&m.join("model.int8.safetensors"), b"new weights")?;
        write_atomic(&m.join("manifest.json"), b"new manifest")
    })
    .unwrap_err();
    assert!(format!("{err:#}").contains("manifest.json"), "{err:#}");
    assert_eq!(snapshot(out), before, "new weights beside the old manifest, or debris");

    // Without the failure the new folder replaces the old one, and nothing else is left.
    fail::remove("output::write");
    replace_dir(&model, |m| write_atomic(&m.join("manifest.json"), b"new manifest")).unwrap();
    assert_eq!(
        snapshot(out),
        [
            ("eval_results.txt".to_string(), b"old results".to_vec()),
            ("model/".to_string(), Vec::new()),
            ("model/manifest.json".to_string(), b"new manifest".to_vec()),
        ]
    );

    // Overwriting a run folder removes what the earlier run wrote (stale plots, checkpoints) and keeps
    // the user's own files.
    std::fs::create_dir_all(out.join("checkpoints/epoch-1")).unwrap();
    std::fs::write(out.join("training_curve.svg"), "<svg/>").unwrap();
    std::fs::write(out.join("notes.txt"), "mine").unwrap();
    assert!(prepare_output_dir(out, false).is_err(), "a non-empty folder needs --overwrite-output-dir");
    prepare_output_dir(out, true).unwrap();
    assert_eq!(snapshot(out), [("notes.txt".to_string(), b"mine".to_vec())]);
}
