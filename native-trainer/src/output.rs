//! Output folders and files: a folder is not overwritten unless asked, and every file is written
//! atomically (a temporary file, then a rename), so a killed run leaves no half-written file.

use std::path::Path;

use anyhow::{bail, Context, Result};

/// Refuses to overwrite a non-empty folder unless asked to.
pub fn prepare_output_dir(dir: &Path, overwrite: bool) -> Result<()> {
    let non_empty = dir.read_dir().map(|mut d| d.next().is_some()).unwrap_or(false);
    if non_empty && !overwrite {
        bail!("{} exists and is not empty (pass --overwrite-output-dir to replace it)", dir.display());
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
}

/// Writes `bytes` to `path` through a temporary file and a rename, so a killed run leaves no half file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = path.with_extension(format!("{}.tmp", path.extension().and_then(|e| e.to_str()).unwrap_or("")));
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
}
