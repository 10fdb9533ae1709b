//! Finding a WebGPU adapter and opening a device on it: the browser's `navigator.gpu` on wasm, Vulkan,
//! Metal or DX12 natively. The device is requested with the adapter's own limits (a default device gets
//! only 128 MiB storage bindings and 16 KiB workgroup memory), and the adapter says whether it is a real
//! GPU or a CPU/software one (SwiftShader, lavapipe), which `auto` avoids.
//!
//! Every WebGPU call that costs (an object created: a driver allocation natively, a message to the GPU
//! process in a browser; an upload; a submit; a readback) goes through [`Gpu`]'s methods, which count
//! them ([`ApiCounts`]): the backend's per-call budget is asserted in tests and printed by `bench
//! --counters`.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use wgpu::util::DeviceExt;

use crate::error::{Error, Result};

/// How many of each costly WebGPU call a device has seen (or, from [`ApiCounts::since`], a stretch of
/// work has made).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ApiCounts {
    pub buffers: u64,
    pub bind_groups: u64,
    /// Bind group and pipeline layouts.
    pub layouts: u64,
    pub pipelines: u64,
    pub shader_modules: u64,
    /// `queue.write_buffer` calls.
    pub uploads: u64,
    pub submits: u64,
    /// Buffers mapped for reading.
    pub readbacks: u64,
}

impl ApiCounts {
    /// The calls made since `earlier` was read.
    pub fn since(self, earlier: ApiCounts) -> ApiCounts {
        ApiCounts {
            buffers: self.buffers - earlier.buffers,
            bind_groups: self.bind_groups - earlier.bind_groups,
            layouts: self.layouts - earlier.layouts,
            pipelines: self.pipelines - earlier.pipelines,
            shader_modules: self.shader_modules - earlier.shader_modules,
            uploads: self.uploads - earlier.uploads,
            submits: self.submits - earlier.submits,
            readbacks: self.readbacks - earlier.readbacks,
        }
    }

    /// The larger of each count (the most any of several calls made).
    pub fn most(self, other: ApiCounts) -> ApiCounts {
        ApiCounts {
            buffers: self.buffers.max(other.buffers),
            bind_groups: self.bind_groups.max(other.bind_groups),
            layouts: self.layouts.max(other.layouts),
            pipelines: self.pipelines.max(other.pipelines),
            shader_modules: self.shader_modules.max(other.shader_modules),
            uploads: self.uploads.max(other.uploads),
            submits: self.submits.max(other.submits),
            readbacks: self.readbacks.max(other.readbacks),
        }
    }

    /// Objects of any kind created.
    pub fn objects_created(&self) -> u64 {
        self.buffers + self.bind_groups + self.layouts + self.pipelines + self.shader_modules
    }
}

/// The live counters behind [`ApiCounts`].
#[derive(Default)]
struct Counters {
    buffers: AtomicU64,
    bind_groups: AtomicU64,
    layouts: AtomicU64,
    pipelines: AtomicU64,
    shader_modules: AtomicU64,
    uploads: AtomicU64,
    submits: AtomicU64,
    readbacks: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// An adapter found on this machine, before a device is opened on it.
pub struct WebGpuAdapter {
    adapter: wgpu::Adapter,
    info: wgpu::AdapterInfo,
}

/// An open device: queue, limits and the state the backend needs to notice a lost device. The device
/// and queue are reached only through the counting methods below.
pub struct Gpu {
    device: wgpu::Device,
    queue: wgpu::Queue,
    pub limits: wgpu::Limits,
    pub adapter_name: String,
    /// Why the device can no longer be trusted (lost, or an error no scope caught), once that happens.
    failure: Arc<Mutex<Option<String>>>,
    counters: Counters,
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
        Ok(Gpu { device, queue, limits, adapter_name: self.name(), failure, counters: Counters::default() })
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

    /// The calls counted so far.
    pub fn counts(&self) -> ApiCounts {
        let c = &self.counters;
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        ApiCounts {
            buffers: read(&c.buffers),
            bind_groups: read(&c.bind_groups),
            layouts: read(&c.layouts),
            pipelines: read(&c.pipelines),
            shader_modules: read(&c.shader_modules),
            uploads: read(&c.uploads),
            submits: read(&c.submits),
            readbacks: read(&c.readbacks),
        }
    }

    pub fn features(&self) -> wgpu::Features {
        self.device.features()
    }

    /// Nanoseconds per timestamp tick.
    pub fn timestamp_period(&self) -> f32 {
        self.queue.get_timestamp_period()
    }

    /// Catches validation errors until the guard is popped.
    pub fn error_scope(&self) -> wgpu::ErrorScopeGuard {
        self.device.push_error_scope(wgpu::ErrorFilter::Validation)
    }

    pub fn create_buffer(&self, label: &str, size: u64, usage: wgpu::BufferUsages) -> wgpu::Buffer {
        bump(&self.counters.buffers);
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size,
            usage,
            mapped_at_creation: false,
        })
    }

    /// A buffer holding `contents` from its creation.
    pub fn create_buffer_init(&self, label: &str, contents: &[u8], usage: wgpu::BufferUsages) -> wgpu::Buffer {
        bump(&self.counters.buffers);
        self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor { label: Some(label), contents, usage })
    }

    pub fn create_bind_group(&self, descriptor: &wgpu::BindGroupDescriptor) -> wgpu::BindGroup {
        bump(&self.counters.bind_groups);
        self.device.create_bind_group(descriptor)
    }

    pub fn create_bind_group_layout(&self, descriptor: &wgpu::BindGroupLayoutDescriptor) -> wgpu::BindGroupLayout {
        bump(&self.counters.layouts);
        self.device.create_bind_group_layout(descriptor)
    }

    /// A compute pipeline of `module`'s entry point `main` with one bind group of `layout`.
    pub fn create_pipeline(
        &self,
        label: &str,
        module: &wgpu::ShaderModule,
        layout: &wgpu::BindGroupLayout,
    ) -> wgpu::ComputePipeline {
        bump(&self.counters.layouts);
        let pipeline_layout = self.device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(label),
            bind_group_layouts: &[Some(layout)],
            immediate_size: 0,
        });
        bump(&self.counters.pipelines);
        self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(label),
            layout: Some(&pipeline_layout),
            module,
            entry_point: Some("main"),
            compilation_options: Default::default(),
            cache: None,
        })
    }

    /// Compiles WGSL. Natively, without the loop bounding naga adds to every loop by default (a guard
    /// against infinite loops in untrusted shaders, which compilers then cannot unroll or pipeline: a
    /// 0.1 ms kernel took 10 ms, gfx-rs/wgpu#7698): these shaders are ours, compiled into the binary,
    /// and every loop in them runs to a bound given by the dispatch's own sizes. Bounds checks on buffer
    /// accesses stay on. In the browser the page's WebGPU implementation decides (the call is the plain
    /// one there).
    pub fn create_shader_module(&self, label: &str, source: &str) -> wgpu::ShaderModule {
        bump(&self.counters.shader_modules);
        let descriptor =
            wgpu::ShaderModuleDescriptor { label: Some(label), source: wgpu::ShaderSource::Wgsl(source.into()) };
        let checks = wgpu::ShaderRuntimeChecks { force_loop_bounding: false, ..wgpu::ShaderRuntimeChecks::checked() };
        // SAFETY: the shaders are this crate's own (`shaders/*.wgsl`), every loop terminates, and bounds
        // checks stay on (see above).
        unsafe { self.device.create_shader_module_trusted(descriptor, checks) }
    }

    pub fn create_query_set(&self, descriptor: &wgpu::QuerySetDescriptor) -> wgpu::QuerySet {
        self.device.create_query_set(descriptor)
    }

    pub fn create_command_encoder(&self, label: &str) -> wgpu::CommandEncoder {
        self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(label) })
    }

    /// Uploads `data` into `buffer` at `offset`.
    pub fn write_buffer(&self, buffer: &wgpu::Buffer, offset: u64, data: &[u8]) {
        bump(&self.counters.uploads);
        self.queue.write_buffer(buffer, offset, data);
    }

    pub fn submit(&self, commands: wgpu::CommandBuffer) {
        bump(&self.counters.submits);
        self.queue.submit([commands]);
    }

    /// Starts reading the first `bytes` of a mappable buffer back: the request is made now (so other
    /// waits can overlap it), the returned future delivers the bytes, without blocking the browser's
    /// thread.
    pub fn read_back(&self, buffer: &wgpu::Buffer, bytes: u64) -> impl Future<Output = Result<Vec<u8>>> + '_ {
        bump(&self.counters.readbacks);
        let slice = buffer.slice(..bytes);
        let (sender, receiver) = futures_channel::oneshot::channel();
        slice.map_async(wgpu::MapMode::Read, move |result| {
            sender.send(result).ok();
        });
        let buffer = buffer.clone();
        async move {
            // Natively, wait for the GPU here; in the browser the callback fires from the event loop.
            #[cfg(not(target_arch = "wasm32"))]
            self.device
                .poll(wgpu::PollType::wait_indefinitely())
                .map_err(|e| gpu_error(format!("waiting for the GPU failed: {e}")))?;
            receiver
                .await
                .map_err(|_| gpu_error("the GPU readback was cancelled"))?
                .map_err(|e| gpu_error(format!("the GPU readback failed: {e}")))?;
            let slice = buffer.slice(..bytes);
            let values = {
                let view =
                    slice.get_mapped_range().map_err(|e| gpu_error(format!("the GPU readback failed: {e:?}")))?;
                view.to_vec()
            };
            buffer.unmap();
            Ok(values)
        }
    }
}
