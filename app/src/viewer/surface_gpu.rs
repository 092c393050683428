//! Drawing label surfaces with wgpu: the 3D view's paint callback when the app runs on eframe's
//! wgpu renderer, and an off-screen picture for tests and the benchmark. The same orthographic
//! projection and headlight as the CPU rasteriser of [`crate::viewer::surface_render`] (the
//! fallback on glow), so both draw the same picture.
//!
//! Meshes are uploaded once per extraction, on the 3D view's own thread (a `wgpu::Device` may be
//! used from any thread); a frame only writes one small uniform block per label.

use crate::viewer::surface_render::{AMBIENT, Projection};
use eframe::egui::Color32;
use eframe::egui_wgpu;
use engine::mesh::Mesh;
use std::sync::Arc;
use wgpu::util::DeviceExt;

/// The depth buffer the app asks eframe for (bits), and the format the pipeline is built for.
pub const DEPTH_BITS: u8 = 24;
/// The depth buffer's format.
pub const DEPTH_FORMAT: wgpu::TextureFormat = wgpu::TextureFormat::Depth24Plus;
/// Bytes between two labels' uniform blocks (the largest alignment wgpu allows a device to ask).
const UNIFORM_STRIDE: u64 = 256;

const SHADER: &str = r"
struct Draw {
    clip_from_world: mat4x4<f32>,
    // xyz: the direction away from the viewer; w: the ambient light.
    depth_direction: vec4<f32>,
    // rgb: the label's colour (0..1); a: its opacity.
    colour: vec4<f32>,
}
@group(0) @binding(0) var<uniform> draw: Draw;

struct Varyings {
    @builtin(position) position: vec4<f32>,
    @location(0) shade: f32,
}

@vertex
fn vs_main(@location(0) position: vec3<f32>, @location(1) normal: vec3<f32>) -> Varyings {
    var out: Varyings;
    out.position = draw.clip_from_world * vec4<f32>(position, 1.0);
    // Headlight: both sides of a face are lit (Gouraud: the light is interpolated).
    let ambient = draw.depth_direction.w;
    out.shade = ambient + (1.0 - ambient) * abs(dot(normal, draw.depth_direction.xyz));
    return out;
}

@fragment
fn fs_main(in: Varyings) -> @location(0) vec4<f32> {
    return vec4<f32>(draw.colour.rgb * clamp(in.shade, 0.0, 1.0), draw.colour.a);
}
";

/// One mesh on the GPU: interleaved position and normal (f32 × 6 per vertex), u32 indices.
pub struct GpuMesh {
    vertices: wgpu::Buffer,
    indices: wgpu::Buffer,
    index_count: u32,
}

impl GpuMesh {
    /// Uploads `mesh` (none when it has no triangles or more indices than a draw call takes).
    pub fn upload(device: &wgpu::Device, mesh: &Mesh) -> Option<Self> {
        let index_count = u32::try_from(mesh.triangles.len().checked_mul(3)?).ok()?;
        if index_count == 0 {
            return None;
        }
        let vertices: Vec<f32> = mesh
            .positions
            .iter()
            .zip(&mesh.normals)
            .flat_map(|(p, n)| [p[0], p[1], p[2], n[0], n[1], n[2]])
            .collect();
        let indices: Vec<u32> = mesh.triangles.iter().flatten().copied().collect();
        Some(Self {
            vertices: device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("surface vertices"),
                contents: bytemuck::cast_slice(&vertices),
                usage: wgpu::BufferUsages::VERTEX,
            }),
            indices: device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("surface indices"),
                contents: bytemuck::cast_slice(&indices),
                usage: wgpu::BufferUsages::INDEX,
            }),
            index_count,
        })
    }
}

/// One label's uniform block, as the shader's `Draw`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct DrawUniforms {
    clip_from_world: [[f32; 4]; 4],
    depth_direction: [f32; 4],
    colour: [f32; 4],
}

impl DrawUniforms {
    /// The block that draws a mesh in `colour` (its alpha: the surface's opacity) with
    /// `projection` into a picture of `size` pixels; depth covers `depth_half_range` mm either
    /// side of the scene's centre.
    pub fn new(projection: &Projection, size: [usize; 2], depth_half_range: f64, colour: Color32) -> Self {
        let d = projection.depth_direction();
        Self {
            clip_from_world: projection.clip_from_world(size, depth_half_range),
            depth_direction: [d[0] as f32, d[1] as f32, d[2] as f32, AMBIENT as f32],
            colour: colour.to_srgba_unmultiplied().map(|c| f32::from(c) / 255.0),
        }
    }

    /// Whether the surface is drawn blended (opacity under 1).
    fn translucent(&self) -> bool {
        self.colour[3] < 1.0
    }
}

/// The render pipelines (opaque, and translucent: blended, not writing depth) and their uniform
/// buffer, kept in egui-wgpu's callback resources.
pub struct SurfacePipeline {
    opaque: wgpu::RenderPipeline,
    translucent: wgpu::RenderPipeline,
    layout: wgpu::BindGroupLayout,
    uniforms: wgpu::Buffer,
    bind_group: wgpu::BindGroup,
    /// Uniform blocks the buffer holds.
    capacity: u64,
}

impl SurfacePipeline {
    /// The pipeline for colour targets of `format` with a [`DEPTH_FORMAT`] depth buffer.
    pub fn new(device: &wgpu::Device, format: wgpu::TextureFormat) -> Self {
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("surfaces"),
            source: wgpu::ShaderSource::Wgsl(SHADER.into()),
        });
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("surface uniforms"),
            entries: &[wgpu::BindGroupLayoutEntry {
                binding: 0,
                visibility: wgpu::ShaderStages::VERTEX_FRAGMENT,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Uniform,
                    has_dynamic_offset: true,
                    min_binding_size: wgpu::BufferSize::new(size_of::<DrawUniforms>() as u64),
                },
                count: None,
            }],
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("surfaces"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let vertex_layout = wgpu::VertexBufferLayout {
            array_stride: 6 * 4,
            step_mode: wgpu::VertexStepMode::Vertex,
            attributes: &wgpu::vertex_attr_array![0 => Float32x3, 1 => Float32x3],
        };
        let pipeline = |translucent: bool| {
            device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
                label: Some("surfaces"),
                layout: Some(&pipeline_layout),
                vertex: wgpu::VertexState {
                    module: &module,
                    entry_point: Some("vs_main"),
                    compilation_options: wgpu::PipelineCompilationOptions::default(),
                    buffers: &[Some(vertex_layout.clone())],
                },
                primitive: wgpu::PrimitiveState {
                    topology: wgpu::PrimitiveTopology::TriangleList,
                    // The surfaces are closed and wound counter-clockwise seen from outside (the
                    // projection is a rotation, so in NDC too): a back face is always behind a front
                    // one, and skipping it halves a software renderer's work.
                    front_face: wgpu::FrontFace::Ccw,
                    cull_mode: Some(wgpu::Face::Back),
                    ..Default::default()
                },
                depth_stencil: Some(wgpu::DepthStencilState {
                    format: DEPTH_FORMAT,
                    depth_write_enabled: Some(!translucent),
                    depth_compare: Some(wgpu::CompareFunction::Less),
                    stencil: wgpu::StencilState::default(),
                    bias: wgpu::DepthBiasState::default(),
                }),
                multisample: wgpu::MultisampleState::default(),
                fragment: Some(wgpu::FragmentState {
                    module: &module,
                    entry_point: Some("fs_main"),
                    compilation_options: wgpu::PipelineCompilationOptions::default(),
                    targets: &[Some(wgpu::ColorTargetState {
                        format,
                        // Colour: over what lies behind; alpha: "over" too, so an opaque frame
                        // stays opaque (plain alpha blending would write a² + (1 − a) there).
                        blend: translucent.then_some(wgpu::BlendState {
                            color: wgpu::BlendComponent {
                                src_factor: wgpu::BlendFactor::SrcAlpha,
                                dst_factor: wgpu::BlendFactor::OneMinusSrcAlpha,
                                operation: wgpu::BlendOperation::Add,
                            },
                            alpha: wgpu::BlendComponent::OVER,
                        }),
                        write_mask: wgpu::ColorWrites::ALL,
                    })],
                }),
                multiview_mask: None,
                cache: None,
            })
        };
        let (uniforms, bind_group) = uniform_buffer(device, &layout, 8);
        Self {
            opaque: pipeline(false),
            translucent: pipeline(true),
            layout,
            uniforms,
            bind_group,
            capacity: 8,
        }
    }

    /// Writes one uniform block per draw (growing the buffer when needed).
    pub fn prepare(&mut self, device: &wgpu::Device, queue: &wgpu::Queue, blocks: &[DrawUniforms]) {
        let needed = blocks.len() as u64;
        if needed > self.capacity {
            let capacity = needed.next_power_of_two();
            (self.uniforms, self.bind_group) = uniform_buffer(device, &self.layout, capacity);
            self.capacity = capacity;
        }
        for (i, block) in blocks.iter().enumerate() {
            queue.write_buffer(
                &self.uniforms,
                i as u64 * UNIFORM_STRIDE,
                bytemuck::bytes_of(block),
            );
        }
    }

    /// Draws `draws[i]` with the `i`-th block written by [`Self::prepare`]: the opaque surfaces
    /// first, then the translucent ones in order, blended over them (their far sides culled, as
    /// every surface's are).
    pub fn paint(&self, pass: &mut wgpu::RenderPass<'_>, draws: &[(Arc<GpuMesh>, DrawUniforms)]) {
        for translucent in [false, true] {
            pass.set_pipeline(if translucent {
                &self.translucent
            } else {
                &self.opaque
            });
            let blocks = draws.iter().enumerate().take(self.capacity as usize);
            for (i, (mesh, block)) in blocks.filter(|(_, (_, b))| b.translucent() == translucent) {
                if block.colour[3] <= 0.0 {
                    continue;
                }
                let offset = u32::try_from(i as u64 * UNIFORM_STRIDE).unwrap_or(0);
                pass.set_bind_group(0, &self.bind_group, &[offset]);
                pass.set_vertex_buffer(0, mesh.vertices.slice(..));
                pass.set_index_buffer(mesh.indices.slice(..), wgpu::IndexFormat::Uint32);
                pass.draw_indexed(0..mesh.index_count, 0, 0..1);
            }
        }
    }
}

fn uniform_buffer(
    device: &wgpu::Device,
    layout: &wgpu::BindGroupLayout,
    capacity: u64,
) -> (wgpu::Buffer, wgpu::BindGroup) {
    let buffer = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("surface uniforms"),
        size: capacity * UNIFORM_STRIDE,
        usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some("surface uniforms"),
        layout,
        entries: &[wgpu::BindGroupEntry {
            binding: 0,
            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer: &buffer,
                offset: 0,
                size: wgpu::BufferSize::new(size_of::<DrawUniforms>() as u64),
            }),
        }],
    });
    (buffer, bind_group)
}

/// Puts the pipeline into egui-wgpu's callback resources (once, when the app starts on wgpu).
pub fn install(render_state: &egui_wgpu::RenderState) {
    let pipeline = SurfacePipeline::new(&render_state.device, render_state.target_format);
    render_state.renderer.write().callback_resources.insert(pipeline);
}

/// The 3D view's paint callback for one frame: the meshes and their uniform blocks.
pub struct SurfaceCallback {
    /// What to draw, in order (a nearer opaque surface hides a farther one; at equal depth the
    /// first); the translucent ones after the opaque ones.
    pub draws: Vec<(Arc<GpuMesh>, DrawUniforms)>,
}

impl egui_wgpu::CallbackTrait for SurfaceCallback {
    fn prepare(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        _screen_descriptor: &egui_wgpu::ScreenDescriptor,
        _egui_encoder: &mut wgpu::CommandEncoder,
        resources: &mut egui_wgpu::CallbackResources,
    ) -> Vec<wgpu::CommandBuffer> {
        if let Some(pipeline) = resources.get_mut::<SurfacePipeline>() {
            let blocks: Vec<DrawUniforms> = self.draws.iter().map(|(_, block)| *block).collect();
            pipeline.prepare(device, queue, &blocks);
        }
        Vec::new()
    }

    fn paint(
        &self,
        _info: eframe::egui::PaintCallbackInfo,
        pass: &mut wgpu::RenderPass<'static>,
        resources: &egui_wgpu::CallbackResources,
    ) {
        if let Some(pipeline) = resources.get::<SurfacePipeline>() {
            pipeline.paint(pass, &self.draws);
        }
    }
}

/// A wgpu device of its own, for tests and the benchmark: the first adapter wgpu finds
/// (Mesa's lavapipe on a machine without a GPU), or why there is none.
pub fn headless_device() -> Result<(wgpu::Adapter, wgpu::Device, wgpu::Queue), String> {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
        backends: wgpu::Backends::from_env().unwrap_or(wgpu::Backends::PRIMARY | wgpu::Backends::GL),
        ..wgpu::InstanceDescriptor::new_without_display_handle()
    });
    let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions::default()))
        .map_err(|e| format!("no wgpu adapter: {e}"))?;
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor::default()))
        .map_err(|e| {
            format!(
                "the wgpu adapter {:?} gave no device: {e}",
                adapter.get_info().name
            )
        })?;
    Ok((adapter, device, queue))
}

/// An off-screen RGBA picture with its depth buffer, for tests and the benchmark.
pub struct OffscreenTarget {
    colour: wgpu::Texture,
    colour_view: wgpu::TextureView,
    depth_view: wgpu::TextureView,
    extent: wgpu::Extent3d,
}

impl OffscreenTarget {
    /// A target of `size` pixels.
    pub fn new(device: &wgpu::Device, size: [usize; 2]) -> Self {
        let [width, height] = size.map(|v| v.max(1) as u32);
        let extent = wgpu::Extent3d {
            width,
            height,
            depth_or_array_layers: 1,
        };
        let target = |format, usage| {
            device.create_texture(&wgpu::TextureDescriptor {
                label: Some("surfaces off screen"),
                size: extent,
                mip_level_count: 1,
                sample_count: 1,
                dimension: wgpu::TextureDimension::D2,
                format,
                usage,
                view_formats: &[],
            })
        };
        let colour = target(
            wgpu::TextureFormat::Rgba8Unorm,
            wgpu::TextureUsages::RENDER_ATTACHMENT | wgpu::TextureUsages::COPY_SRC,
        );
        let depth = target(DEPTH_FORMAT, wgpu::TextureUsages::RENDER_ATTACHMENT);
        Self {
            colour_view: colour.create_view(&wgpu::TextureViewDescriptor::default()),
            depth_view: depth.create_view(&wgpu::TextureViewDescriptor::default()),
            colour,
            extent,
        }
    }

    /// Draws `draws` over `background` and waits until the GPU has finished.
    ///
    /// # Errors
    /// The GPU did not finish.
    pub fn draw(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        pipeline: &mut SurfacePipeline,
        background: Color32,
        draws: &[(Arc<GpuMesh>, DrawUniforms)],
    ) -> Result<(), String> {
        let blocks: Vec<DrawUniforms> = draws.iter().map(|(_, block)| *block).collect();
        pipeline.prepare(device, queue, &blocks);
        let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor::default());
        {
            let to_unit = |c: u8| f64::from(c) / 255.0;
            let mut pass = encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
                label: Some("surfaces off screen"),
                color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                    view: &self.colour_view,
                    depth_slice: None,
                    resolve_target: None,
                    ops: wgpu::Operations {
                        load: wgpu::LoadOp::Clear(wgpu::Color {
                            r: to_unit(background.r()),
                            g: to_unit(background.g()),
                            b: to_unit(background.b()),
                            a: 1.0,
                        }),
                        store: wgpu::StoreOp::Store,
                    },
                })],
                depth_stencil_attachment: Some(wgpu::RenderPassDepthStencilAttachment {
                    view: &self.depth_view,
                    depth_ops: Some(wgpu::Operations {
                        load: wgpu::LoadOp::Clear(1.0),
                        store: wgpu::StoreOp::Discard,
                    }),
                    stencil_ops: None,
                }),
                timestamp_writes: None,
                occlusion_query_set: None,
                multiview_mask: None,
            });
            pipeline.paint(&mut pass, draws);
        }
        queue.submit([encoder.finish()]);
        device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| format!("the GPU did not finish the picture: {e}"))?;
        Ok(())
    }

    /// The picture, row by row, 4 bytes per pixel.
    ///
    /// # Errors
    /// The picture could not be read back.
    pub fn read(&self, device: &wgpu::Device, queue: &wgpu::Queue) -> Result<Vec<u8>, String> {
        let (width, height) = (self.extent.width, self.extent.height);
        // Rows padded to wgpu's copy alignment.
        let row_bytes = width * 4;
        let padded =
            row_bytes.div_ceil(wgpu::COPY_BYTES_PER_ROW_ALIGNMENT) * wgpu::COPY_BYTES_PER_ROW_ALIGNMENT;
        let readback = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("surfaces read back"),
            size: u64::from(padded) * u64::from(height),
            usage: wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::MAP_READ,
            mapped_at_creation: false,
        });
        let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor::default());
        encoder.copy_texture_to_buffer(
            wgpu::TexelCopyTextureInfo {
                texture: &self.colour,
                mip_level: 0,
                origin: wgpu::Origin3d::ZERO,
                aspect: wgpu::TextureAspect::All,
            },
            wgpu::TexelCopyBufferInfo {
                buffer: &readback,
                layout: wgpu::TexelCopyBufferLayout {
                    offset: 0,
                    bytes_per_row: Some(padded),
                    rows_per_image: Some(height),
                },
            },
            self.extent,
        );
        queue.submit([encoder.finish()]);
        let slice = readback.slice(..);
        slice.map_async(wgpu::MapMode::Read, |_| {});
        device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| format!("the GPU did not finish the copy: {e}"))?;
        let mapped = slice
            .get_mapped_range()
            .map_err(|e| format!("the picture could not be read back: {e}"))?;
        let mut pixels = Vec::with_capacity((row_bytes * height) as usize);
        for row in mapped.chunks(padded as usize) {
            pixels.extend_from_slice(&row[..row_bytes as usize]);
        }
        Ok(pixels)
    }
}

/// Draws `draws` into a new off-screen picture of `size` pixels over `background` and reads it
/// back (row by row, 4 bytes per pixel).
///
/// # Errors
/// The GPU did not finish, or the picture could not be read back.
pub fn draw_offscreen(
    device: &wgpu::Device,
    queue: &wgpu::Queue,
    pipeline: &mut SurfacePipeline,
    size: [usize; 2],
    background: Color32,
    draws: &[(Arc<GpuMesh>, DrawUniforms)],
) -> Result<Vec<u8>, String> {
    let target = OffscreenTarget::new(device, size);
    target.draw(device, queue, pipeline, background, draws)?;
    target.read(device, queue)
}

#[cfg(test)]
#[path = "surface_gpu_tests.rs"]
mod tests;
