//! Output folders and files, consistent or absent after any failure (a full disk, a killed run):
//! - a file is written to a hidden temporary beside it, flushed to disk (`fsync`), renamed into place, and
//!   its folder flushed, so it is the old file or the whole new one; a failed write removes its temporary;
//! - a folder that must stay coherent (the exported `model/`, whose manifest lists its files' digests) is
//!   built whole in a hidden staging folder and swapped in, so it never mixes two exports;
//! - a folder is not overwritten unless asked, and overwriting removes what an earlier run wrote there
//!   ([`RUN_OUTPUTS`]), so no stale plot or checkpoint is left beside the new ones.
//!
//! Write failures can be injected in tests (the `fail` crate's failpoint `output::write`, compiled in only
//! with its `failpoints` feature, which only the tests enable).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

/// What `train` and `export` write into an output folder: removed when it is overwritten.
pub const RUN_OUTPUTS: [&str; 8] = [
    "model",
    "hf",
    crate::checkpoint::DIR,
    "eval_results.txt",
    "predictions.txt",
    "confusion_matrix.svg",
    "training_loss.tsv",
    "training_curve.svg",
];

/// Refuses to overwrite a non-empty folder unless asked to; when overwriting, removes what an earlier
/// run wrote there (and nothing else: the folder may hold the user's own files).
pub fn prepare_output_dir(dir: &Path, overwrite: bool) -> Result<()> {
    let non_empty = dir.read_dir().map(|mut d| d.next().is_some()).unwrap_or(false);
    if non_empty && !overwrite {
        bail!("{} exists and is not empty (pass --overwrite-output-dir to replace it)", dir.display());
    }
    if non_empty {
        for name in RUN_OUTPUTS {
            remove_path(&dir.join(name))?;
        }
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
}

/// Removes a file or folder; absent is fine.
pub fn remove_path(path: &Path) -> Result<()> {
    let result = match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(err),
    };
    result.with_context(|| format!("removing {}", path.display()))
}

/// A hidden sibling of `path` with `suffix`: `dir/.name.suffix`.
fn hidden_sibling(path: &Path, suffix: &str) -> PathBuf {
    let name = path.file_name().map_or_else(|| "output".into(), |n| n.to_string_lossy().into_owned());
    path.with_file_name(format!(".{name}.{suffix}"))
}

/// Flushes a folder's entries (a rename in it) to disk; a no-op where folders cannot be opened (Windows).
fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    std::fs::File::open(dir).and_then(|d| d.sync_all()).with_context(|| format!("flushing {}", dir.display()))?;
    let _ = dir;
    Ok(())
}

/// Writes `bytes` to `path` durably and atomically: `path` is afterwards the old file or the new one,
/// never part of either, even if the machine stops; on failure no temporary is left behind.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let tmp = hidden_sibling(path, "tmp");
    let written = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        fail::fail_point!("output::write", |_| {
            // A full disk: part of the file made it.
            let _ = file.write_all(&bytes[..bytes.len() / 2]);
            Err(std::io::Error::other("injected write failure (no space left on device)"))
        });
        file.write_all(bytes)?;
        file.sync_all()
    })();
    if let Err(err) = written.and_then(|()| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(anyhow!(err).context(format!("writing {}", path.display())));
    }
    sync_dir(parent)
}

/// Replaces the folder `dir` by what `fill` writes into a staging folder (given to it), swapped in only
/// when `fill` succeeded: afterwards `dir` is the old folder or the whole new one. On failure the staging
/// folder is removed and the old folder kept.
pub fn replace_dir(dir: &Path, fill: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let (staging, old) = (hidden_sibling(dir, "partial"), hidden_sibling(dir, "old"));
    remove_path(&staging)?;
    std::fs::create_dir_all(&staging).with_context(|| format!("creating {}", staging.display()))?;
    if let Err(err) = fill(&staging) {
        let _ = remove_path(&staging);
        return Err(err);
    }
    remove_path(&old)?;
    if dir.exists() {
        std::fs::rename(dir, &old).with_context(|| format!("moving the old {} aside", dir.display()))?;
    }
    if let Err(err) = std::fs::rename(&staging, dir) {
        // Put the old folder back rather than leave none.
        let _ = std::fs::rename(&old, dir);
        let _ = remove_path(&staging);
        return Err(anyhow!(err).context(format!("moving {} into place", dir.display())));
    }
    sync_dir(dir.parent().unwrap_or(Path::new(".")))?;
    remove_path(&old)
}
