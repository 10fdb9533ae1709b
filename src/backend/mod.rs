//! Inference backends and the choice between them. The CPU backend (candle, wasm SIMD in the browser)
//! always exists; WebGPU is chosen by `auto` only where it is both available and built.

pub mod cpu;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// What the caller asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendChoice {
    /// The fastest backend that works here.
    #[default]
    Auto,
    /// WebGPU compute shaders; an error where unavailable.
    Webgpu,
    /// candle on the CPU (wasm SIMD in the browser).
    Cpu,
}

impl std::str::FromStr for BackendChoice {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "auto" => Ok(Self::Auto),
            "webgpu" => Ok(Self::Webgpu),
            "cpu" => Ok(Self::Cpu),
            other => Err(Error::Input(format!("unknown backend {other:?}: expected auto, webgpu or cpu"))),
        }
    }
}

/// The backend that actually ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    Webgpu,
    Cpu,
}

impl BackendKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Webgpu => "webgpu",
            Self::Cpu => "cpu",
        }
    }
}

/// Why `auto` did not pick WebGPU, while this build has no WebGPU backend.
pub const NO_WEBGPU_REASON: &str = "this build has no WebGPU backend yet; running on the CPU (SIMD) backend";

/// Resolves the caller's choice to a backend, with the reason when it is not the caller's first pick.
pub fn select(choice: BackendChoice) -> Result<(BackendKind, Option<String>)> {
    match choice {
        BackendChoice::Cpu => Ok((BackendKind::Cpu, None)),
        BackendChoice::Auto => Ok((BackendKind::Cpu, Some(NO_WEBGPU_REASON.to_string()))),
        BackendChoice::Webgpu => Err(Error::Input(
            "the WebGPU backend is not available in this build; use backend \"cpu\" or \"auto\"".into(),
        )),
    }
}
