//! The model folder's `manifest.json` (docs/contracts.md section 2): what it says about the model
//! (labels, maximum length, calibration) and the check that the files beside it are the ones it lists
//! (size and SHA-256). The page checks the same in JS (`www/sha256.js`); native loaders use this.

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The manifest formats this crate reads.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    /// Label names by class index.
    pub labels: Vec<String>,
    /// Tokens per text the model was trained and validated with, special tokens included.
    pub max_length: Option<usize>,
    pub files: Vec<ListedFile>,
    #[serde(default)]
    pub calibration: Option<Calibration>,
    /// The validation metrics the export measured (free-form JSON, for reports and tests).
    #[serde(default)]
    pub metrics: serde_json::Value,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ListedFile {
    pub path: String,
    pub bytes: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Calibration {
    pub temperature: f32,
}

impl Manifest {
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let manifest: Manifest = serde_json::from_slice(bytes).map_err(|e| Error::Manifest(e.to_string()))?;
        if manifest.format_version != FORMAT_VERSION {
            return Err(Error::Manifest(format!(
                "format_version {} (this build reads {FORMAT_VERSION})",
                manifest.format_version
            )));
        }
        if let Some(t) = manifest.temperature() {
            if !(t.is_finite() && t > 0.0) {
                return Err(Error::Manifest(format!("calibration temperature {t} is not a positive number")));
            }
        }
        Ok(manifest)
    }

    pub fn temperature(&self) -> Option<f32> {
        self.calibration.map(|c| c.temperature)
    }

    /// The listing of `path`, if the manifest has one.
    pub fn listed(&self, path: &str) -> Option<&ListedFile> {
        self.files.iter().find(|f| f.path == path)
    }

    /// Checks that `bytes` are the file the manifest lists as `path`: an error if it is not listed or its
    /// size or SHA-256 differ (a truncated download, a stale or swapped file).
    pub fn verify(&self, path: &str, bytes: &[u8]) -> Result<()> {
        let listed = self.listed(path).ok_or_else(|| Error::Manifest(format!("{path} is not listed")))?;
        if listed.bytes != bytes.len() as u64 {
            return Err(Error::Manifest(format!(
                "{path} has {} bytes, the manifest lists {}",
                bytes.len(),
                listed.bytes
            )));
        }
        let sha256 = hex(&Sha256::digest(bytes));
        if !listed.sha256.eq_ignore_ascii_case(&sha256) {
            return Err(Error::Manifest(format!("{path} has SHA-256 {sha256}, the manifest lists {}", listed.sha256)));
        }
        Ok(())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest_for(path: &str, bytes: &[u8]) -> Manifest {
        let json = serde_json::json!({
            "format_version": 1, "labels": ["human", "bot"], "max_length": 128,
            "files": [{"path": path, "bytes": bytes.len(), "sha256": hex(&Sha256::digest(bytes))}],
            "calibration": {"temperature": 1.5},
        });
        Manifest::parse(json.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn verifies_size_and_digest() {
        let m = manifest_for("a.bin", b"hello");
        assert_eq!(m.temperature(), Some(1.5));
        m.verify("a.bin", b"hello").unwrap();
        let err = m.verify("a.bin", b"hellO").unwrap_err().to_string();
        assert!(err.contains("SHA-256"), "{err}");
        let err = m.verify("a.bin", b"hell").unwrap_err().to_string();
        assert!(err.contains("4 bytes, the manifest lists 5"), "{err}");
        let err = m.verify("b.bin", b"hello").unwrap_err().to_string();
        assert!(err.contains("b.bin is not listed"), "{err}");
    }

    #[test]
    fn refuses_other_versions_and_bad_temperatures() {
        let version = r#"{"format_version": 2, "labels": [], "files": []}"#;
        assert!(Manifest::parse(version.as_bytes()).unwrap_err().to_string().contains("format_version 2"));
        let temperature = r#"{"format_version": 1, "labels": [], "files": [], "calibration": {"temperature": -1}}"#;
        assert!(Manifest::parse(temperature.as_bytes()).unwrap_err().to_string().contains("temperature"));
        assert!(Manifest::parse(b"{").is_err());
    }
}
