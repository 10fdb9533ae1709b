//! Where training math runs: the `--device` choice and the candle device it opens.

use anyhow::{bail, Context, Result};
use candle_core::Device;

/// Where training math runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceChoice {
    Cpu,
    Cuda,
    /// CUDA when built with it and a GPU is present, else CPU.
    Auto,
}

/// A short name of a device for logs and reports.
pub fn device_name(device: &Device) -> &'static str {
    match device {
        Device::Cpu => "cpu",
        Device::Cuda(_) => "cuda",
        Device::Metal(_) => "metal",
    }
}

pub fn device(choice: DeviceChoice) -> Result<Device> {
    match choice {
        DeviceChoice::Cpu => Ok(Device::Cpu),
        DeviceChoice::Cuda if !cfg!(feature = "cuda") => {
            bail!("this binary was built without CUDA: rebuild with `--features cuda` (docs/cuda.md)")
        }
        DeviceChoice::Cuda => Device::new_cuda(0).context("opening CUDA device 0"),
        DeviceChoice::Auto => Ok(Device::cuda_if_available(0).unwrap_or(Device::Cpu)),
    }
}
