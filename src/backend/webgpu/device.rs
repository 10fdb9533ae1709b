//! Finding a WebGPU adapter and opening a device on it: the browser's `navigator.gpu` on wasm, Vulkan,
//! Metal or DX12 natively. The device is requested with the adapter's own limits (a default device gets
//! only 128 MiB storage bindings and 16 KiB workgroup memory), and the adapter says whether it is a real
//! GPU or a CPU/software one (SwiftShader, lavapipe), which `auto` avoids.

use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};

/// An adapter found on this machine, before a device is opened on it.
pub struct WebGpuAdapter {
    adapter: wgpu::Adapter,
    info: wgpu::AdapterInfo,
}

/// An open device: queue, limits and the state the backend needs to notice a lost device.
pub struct Gpu {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub limits: wgpu::Limits,
    pub adapter_name: String,
    /// Why the device can no longer be trusted (lost, or an error no scope caught), once that happens.
    failure: Arc<Mutex<Option<String>>>,
}

pub(crate) fn gpu_error(message: impl std::fmt::Display) -> Error {
    Error::Backend { backend: "webgpu", message: message.to_string() }
}

impl WebGpuAdapter {
    /// The best adapter this machine offers, or why there is none. `WGPU_BACKEND` (e.g. `vulkan`) narrows
    /// the native search, as in wgpu's examples.
    pub async fn request() -> Result<WebGpuAdapter> {
        let backends = if cfg!(target_arch = "wasm32") {
            wgpu::Backends::BROWSER_WEBGPU
        } else {
            wgpu::Backends::from_env().unwrap_or(wgpu::Backends::VULKAN | wgpu::Backends::METAL | wgpu::Backends::DX12)
        };
        let mut descriptor = wgpu::InstanceDescriptor::new_without_display_handle();
        descriptor.backends = backends;
        let instance = wgpu::Instance::new(descriptor);
        let options = wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            force_fallback_adapter: false,
            compatible_surface: None,
            ..Default::default()
        };
        let adapter = instance
            .request_adapter(&options)
            .await
            .map_err(|e| gpu_error(format!("no WebGPU adapter is available ({e})")))?;
        let info = adapter.get_info();
        Ok(WebGpuAdapter { adapter, info })
    }

    /// A readable name: "NVIDIA H100 (Vulkan)".
    pub fn name(&self) -> String {
        let name = if self.info.name.is_empty() { "unnamed adapter" } else { self.info.name.as_str() };
        format!("{name} ({:?})", self.info.backend)
    }

    /// Why this adapter is a CPU or software implementation, if it is one: such adapters run WGSL far
    /// slower than the CPU backend's SIMD code, so `auto` skips them.
    pub fn software_reason(&self) -> Option<String> {
        let name = self.info.name.to_lowercase();
        let software_name = ["swiftshader", "llvmpipe", "lavapipe", "softpipe", "warp", "basic render"]
            .iter()
            .any(|s| name.contains(s));
        (self.info.device_type == wgpu::DeviceType::Cpu || software_name)
            .then(|| format!("the WebGPU adapter {} is a CPU/software implementation", self.name()))
    }

    /// Opens the device with the adapter's limits. No optional feature is required; timestamp queries
    /// are enabled where the adapter has them, for [`super::WebGpuBackend::profile`].
    pub async fn open(self) -> Result<Gpu> {
        let limits = self.adapter.limits();
        let descriptor = wgpu::DeviceDescriptor {
            label: Some("tweetguard"),
            required_features: self.adapter.features() & wgpu::Features::TIMESTAMP_QUERY,
            required_limits: limits.clone(),
            ..Default::default()
        };
        let (device, queue) = self
            .adapter
            .request_device(&descriptor)
            .await
            .map_err(|e| gpu_error(format!("the adapter {} refused a device: {e}", self.name())))?;
        // wgpu's default handler panics on an error no scope caught, which would trap in the browser:
        // record it instead, and let the backend fall back to the CPU.
        let failure = Arc::new(Mutex::new(None));
        let slot = failure.clone();
        device.set_device_lost_callback(move |reason, message| {
            record(&slot, format!("the GPU device was lost ({reason:?}: {message})"));
        });
        let slot = failure.clone();
        device.on_uncaptured_error(Arc::new(move |error| record(&slot, format!("a GPU error went uncaught: {error}"))));
        Ok(Gpu { device, queue, limits, adapter_name: self.name(), failure })
    }
}

fn record(slot: &Mutex<Option<String>>, why: String) {
    if let Ok(mut slot) = slot.lock() {
        slot.get_or_insert(why);
    }
}

impl Gpu {
    /// Why the device cannot be used any more (lost by a driver reset or `destroy`, or an uncaught GPU
    /// error), if it cannot.
    pub fn failure(&self) -> Option<String> {
        self.failure.lock().ok().and_then(|f| f.clone())
    }

    /// Destroys the device, as a driver reset would: for testing the fallback path.
    pub fn simulate_loss(&self) {
        self.device.destroy();
        record(&self.failure, "the GPU device was lost (destroyed)".to_string());
    }
}
