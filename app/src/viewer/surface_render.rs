//! Drawing label surfaces for the 3D view on the CPU: an orthographic camera that orbits the
//! scan, and a z-buffered rasteriser with Gouraud shading under a headlight. It keeps the depth
//! of every pixel, so a click can be turned back into the world point it shows.

use eframe::egui::{Color32, ColorImage};
use engine::mesh::Mesh;

/// Light that reaches every face, as a fraction of the label's colour.
pub const AMBIENT: f64 = 0.3;
/// The background behind the surfaces.
pub const BACKGROUND: Color32 = Color32::from_rgb(24, 26, 30);

/// Where the 3D view looks from: angles around the scan, zoom and pan.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Camera {
    /// Rotation about the patient's superior axis, radians (0: from the front).
    pub yaw: f64,
    /// Rotation about the screen's horizontal axis, radians, within ±90°.
    pub pitch: f64,
    /// 1: the scan's bounding sphere fits the view.
    pub zoom: f64,
    /// Shift of the picture, pixels.
    pub pan: [f64; 2],
}

impl Default for Camera {
    /// From the front (the patient's right on the screen's left), a little from the right and
    /// above, the whole scan in view.
    fn default() -> Self {
        Self {
            yaw: -0.5,
            pitch: 0.35,
            zoom: 1.0,
            pan: [0.0; 2],
        }
    }
}

/// The sphere the camera keeps in view: the scan's box, in world millimetres.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scene {
    /// Centre, mm.
    pub centre: [f64; 3],
    /// Radius, mm (positive).
    pub radius: f64,
}

/// World millimetres to pixels for one camera and picture size: screen x to the right, y down,
/// depth away from the viewer (mm).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Projection {
    /// Rows: the screen's x, y and depth directions in world coordinates.
    rotation: [[f64; 3]; 3],
    centre: [f64; 3],
    /// Pixels per millimetre.
    scale: f64,
    /// Where the scene's centre lands, pixels.
    origin: [f64; 2],
}

impl Projection {
    /// The projection of `camera` on `scene` into a picture of `size` pixels (width, height).
    pub fn new(camera: &Camera, scene: &Scene, size: [usize; 2]) -> Self {
        // From the front in RAS+: the patient's right (+x) on the left of the screen, superior
        // (+z) up, anterior (+y) towards the viewer.
        let front = [[-1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, -1.0, 0.0]];
        let (sy, cy) = camera.yaw.sin_cos();
        let yaw = [[cy, -sy, 0.0], [sy, cy, 0.0], [0.0, 0.0, 1.0]];
        let pitch_angle = camera
            .pitch
            .clamp(-std::f64::consts::FRAC_PI_2, std::f64::consts::FRAC_PI_2);
        let (sp, cp) = pitch_angle.sin_cos();
        let pitch = [[1.0, 0.0, 0.0], [0.0, cp, -sp], [0.0, sp, cp]];
        let rotation = multiply(&pitch, &multiply(&front, &yaw));
        let [width, height] = size.map(|v| v.max(1) as f64);
        let scale = camera.zoom.max(1e-3) * width.min(height) / (2.0 * scene.radius.max(1e-6));
        Self {
            rotation,
            centre: scene.centre,
            scale,
            origin: [width / 2.0 + camera.pan[0], height / 2.0 + camera.pan[1]],
        }
    }

    /// Pixel x, pixel y and depth (mm) of world point `p`.
    pub fn project(&self, p: [f64; 3]) -> [f64; 3] {
        let d = [
            p[0] - self.centre[0],
            p[1] - self.centre[1],
            p[2] - self.centre[2],
        ];
        let [x, y, z] = self
            .rotation
            .map(|row| row[0] * d[0] + row[1] * d[1] + row[2] * d[2]);
        [
            self.origin[0] + x * self.scale,
            self.origin[1] + y * self.scale,
            z,
        ]
    }

    /// The world point at pixel position (x, y) and `depth`: the inverse of [`Self::project`].
    pub fn unproject(&self, x: f64, y: f64, depth: f64) -> [f64; 3] {
        let s = [
            (x - self.origin[0]) / self.scale,
            (y - self.origin[1]) / self.scale,
            depth,
        ];
        let r = &self.rotation;
        std::array::from_fn(|a| self.centre[a] + r[0][a] * s[0] + r[1][a] * s[1] + r[2][a] * s[2])
    }

    /// The matrix (column-major, as WGSL's `mat4x4` takes it) from world millimetres to clip
    /// space for a picture of `size` pixels: the same pixel x and y as [`Self::project`] (NDC's
    /// y points up), and depth −`depth_half_range`..`depth_half_range`
    /// mm around the scene's centre to 0..1.
    pub fn clip_from_world(&self, size: [usize; 2], depth_half_range: f64) -> [[f32; 4]; 4] {
        let [width, height] = size.map(|v| v.max(1) as f64);
        // Rows of the affine map: ndc = gain · (rotation row · (p − centre)) + offset.
        let gains = [
            2.0 * self.scale / width,
            -2.0 * self.scale / height,
            0.5 / depth_half_range.max(1e-6),
        ];
        let offsets = [
            2.0 * self.origin[0] / width - 1.0,
            1.0 - 2.0 * self.origin[1] / height,
            0.5,
        ];
        let mut rows = [[0.0f64; 4]; 4];
        for k in 0..3 {
            let r = self.rotation[k];
            rows[k] = [
                gains[k] * r[0],
                gains[k] * r[1],
                gains[k] * r[2],
                offsets[k]
                    - gains[k] * (r[0] * self.centre[0] + r[1] * self.centre[1] + r[2] * self.centre[2]),
            ];
        }
        rows[3] = [0.0, 0.0, 0.0, 1.0];
        std::array::from_fn(|column| std::array::from_fn(|row| rows[row][column] as f32))
    }

    /// The unit world direction away from the viewer.
    pub fn depth_direction(&self) -> [f64; 3] {
        self.rotation[2]
    }

    /// The ray through the centre of pixel (x, y): a world point `reach` mm in front of the scene's
    /// centre, and the unit direction away from the viewer.
    pub fn ray(&self, x: f64, y: f64, reach: f64) -> ([f64; 3], [f64; 3]) {
        (self.unproject(x + 0.5, y + 0.5, -reach), self.rotation[2])
    }

    /// The depth component of a world direction (negative: towards the viewer).
    fn depth_of_direction(&self, n: [f64; 3]) -> f64 {
        let row = self.rotation[2];
        row[0] * n[0] + row[1] * n[1] + row[2] * n[2]
    }
}

fn multiply(a: &[[f64; 3]; 3], b: &[[f64; 3]; 3]) -> [[f64; 3]; 3] {
    std::array::from_fn(|i| std::array::from_fn(|j| (0..3).map(|k| a[i][k] * b[k][j]).sum()))
}

/// A drawn picture: its pixels, the depth under each (infinite where no surface is), and the
/// projection that made it.
#[derive(Clone)]
pub struct Rendered {
    /// The pixels.
    pub image: ColorImage,
    /// Depth per pixel, row by row, mm.
    pub depth: Vec<f32>,
    /// The projection the picture was drawn with.
    pub projection: Projection,
}

impl Rendered {
    /// The world point drawn at pixel (x, y) (its centre), or `None` over the background.
    pub fn pick(&self, x: usize, y: usize) -> Option<[f64; 3]> {
        let [width, height] = self.image.size;
        if x >= width || y >= height {
            return None;
        }
        let depth = self.depth[y * width + x];
        depth.is_finite().then(|| {
            self.projection
                .unproject(x as f64 + 0.5, y as f64 + 0.5, f64::from(depth))
        })
    }
}

/// The nearest surface point of `meshes` under pixel (x, y), by casting a ray from `reach` mm in
/// front of the scene's centre (what [`Rendered::pick`] reads from the depth buffer, for a picture
/// drawn on the GPU).
pub fn pick_by_ray(
    meshes: &[&Mesh],
    projection: &Projection,
    x: f64,
    y: f64,
    reach: f64,
) -> Option<[f64; 3]> {
    let (origin, direction) = projection.ray(x, y, reach);
    let t = meshes
        .iter()
        .filter_map(|mesh| mesh.first_hit(origin, direction, 0.0))
        .min_by(f64::total_cmp)?;
    Some(std::array::from_fn(|a| origin[a] + t * direction[a]))
}

/// Whether a surface of `meshes` lies more than `tolerance` mm in front of world point `p`.
pub fn hidden_by(meshes: &[&Mesh], projection: &Projection, p: [f64; 3], tolerance: f64) -> bool {
    let towards_viewer = projection.depth_direction().map(|d| -d);
    meshes
        .iter()
        .any(|mesh| mesh.first_hit(p, towards_viewer, tolerance).is_some())
}

/// Draws `meshes`, each in its colour, with `projection` into a picture of `size` pixels.
/// A colour's alpha is the surface's opacity: opaque surfaces are drawn first, a nearer one
/// hiding a farther one (at equal depth the one listed first stays); then the translucent ones,
/// in order, blended over what lies behind them, their faces turned away from the viewer skipped
/// (the surfaces are closed, so those are their far sides). A surface of alpha 0 is not drawn.
/// The picture's depth is that of the nearest surface drawn, translucent or not.
pub fn render(meshes: &[(&Mesh, Color32)], projection: &Projection, size: [usize; 2]) -> Rendered {
    let [width, height] = size;
    let mut pixels = vec![BACKGROUND; width * height];
    let mut depth = vec![f32::INFINITY; width * height];
    for (mesh, colour) in meshes.iter().filter(|(_, c)| c.a() == u8::MAX) {
        let mut target = Target {
            size,
            pixels: &mut pixels,
            depth: &mut depth,
            translucent: None,
        };
        draw_mesh(mesh, *colour, projection, &mut target);
    }
    let mut nearest = depth.clone();
    let mut blended = vec![0u32; width * height];
    let translucent = meshes.iter().filter(|(_, c)| c.a() > 0 && c.a() < u8::MAX);
    for (k, (mesh, colour)) in (1u32..).zip(translucent) {
        let mut target = Target {
            size,
            pixels: &mut pixels,
            depth: &mut depth,
            translucent: Some(Translucent {
                nearest: &mut nearest,
                blended: &mut blended,
                mesh: k,
            }),
        };
        draw_mesh(mesh, *colour, projection, &mut target);
    }
    Rendered {
        image: ColorImage {
            size,
            source_size: eframe::egui::vec2(width as f32, height as f32),
            pixels,
        },
        depth: nearest,
        projection: *projection,
    }
}

/// Where triangles are drawn: the pixels, the depth of the opaque surfaces, and what a
/// translucent surface needs.
struct Target<'a> {
    size: [usize; 2],
    pixels: &'a mut [Color32],
    depth: &'a mut [f32],
    translucent: Option<Translucent<'a>>,
}

/// For a translucent surface: the nearest depth drawn so far (its own depth is not tested
/// against), and which surface last blended each pixel, so a pixel on the edge two of its
/// triangles share is blended once.
struct Translucent<'a> {
    nearest: &'a mut [f32],
    blended: &'a mut [u32],
    mesh: u32,
}

fn draw_mesh(mesh: &Mesh, colour: Color32, projection: &Projection, target: &mut Target<'_>) {
    let screen: Vec<[f64; 3]> = mesh
        .positions
        .iter()
        .map(|p| projection.project(p.map(f64::from)))
        .collect();
    // Headlight: the light comes from the viewer; both sides of a face are lit.
    let light: Vec<f64> = mesh
        .normals
        .iter()
        .map(|n| AMBIENT + (1.0 - AMBIENT) * projection.depth_of_direction(n.map(f64::from)).abs())
        .collect();
    for triangle in &mesh.triangles {
        let [a, b, c] = triangle.map(|i| i as usize);
        fill_triangle(
            [screen[a], screen[b], screen[c]],
            [light[a], light[b], light[c]],
            colour,
            target,
        );
    }
}

/// Fills the pixels whose centres lie inside the screen triangle `v` where it is nearer than the
/// opaque surfaces drawn: an opaque one in both windings, writing its depth; a translucent one
/// only when it faces the viewer, blended by `colour`'s alpha.
fn fill_triangle(v: [[f64; 3]; 3], light: [f64; 3], colour: Color32, target: &mut Target<'_>) {
    let [width, height] = target.size;
    let area = (v[1][0] - v[0][0]) * (v[2][1] - v[0][1]) - (v[2][0] - v[0][0]) * (v[1][1] - v[0][1]);
    if area == 0.0 || !area.is_finite() {
        return;
    }
    // Outward-wound faces turned towards the viewer run clockwise on the screen (y down).
    if target.translucent.is_some() && area > 0.0 {
        return;
    }
    let low_x = v
        .iter()
        .map(|p| p[0])
        .fold(f64::INFINITY, f64::min)
        .floor()
        .max(0.0);
    let high_x = v
        .iter()
        .map(|p| p[0])
        .fold(f64::NEG_INFINITY, f64::max)
        .ceil()
        .min(width as f64);
    let low_y = v
        .iter()
        .map(|p| p[1])
        .fold(f64::INFINITY, f64::min)
        .floor()
        .max(0.0);
    let high_y = v
        .iter()
        .map(|p| p[1])
        .fold(f64::NEG_INFINITY, f64::max)
        .ceil()
        .min(height as f64);
    if low_x >= high_x || low_y >= high_y {
        return;
    }
    let [r, g, b, a] = colour.to_srgba_unmultiplied();
    let mesh_id = target.translucent.as_ref().map_or(0, |t| t.mesh);
    let alpha = f64::from(a) / 255.0;
    let edge =
        |p: [f64; 3], q: [f64; 3], x: f64, y: f64| (q[0] - p[0]) * (y - p[1]) - (q[1] - p[1]) * (x - p[0]);
    for y in low_y as usize..high_y as usize {
        let cy = y as f64 + 0.5;
        for x in low_x as usize..high_x as usize {
            let cx = x as f64 + 0.5;
            let w0 = edge(v[1], v[2], cx, cy) / area;
            let w1 = edge(v[2], v[0], cx, cy) / area;
            let w2 = 1.0 - w0 - w1;
            if w0 < 0.0 || w1 < 0.0 || w2 < 0.0 {
                continue;
            }
            let z = (w0 * v[0][2] + w1 * v[1][2] + w2 * v[2][2]) as f32;
            let at = y * width + x;
            if z >= target.depth[at] {
                continue;
            }
            let shade = (w0 * light[0] + w1 * light[1] + w2 * light[2]).clamp(0.0, 1.0);
            let lit = [r, g, b].map(|c| f64::from(c) * shade);
            match target.translucent.as_mut() {
                None => {
                    target.depth[at] = z;
                    let [r, g, b] = lit.map(|c| c.round() as u8);
                    target.pixels[at] = Color32::from_rgb(r, g, b);
                }
                Some(Translucent { blended, .. }) if blended[at] == mesh_id => {}
                Some(Translucent { nearest, blended, .. }) => {
                    blended[at] = mesh_id;
                    nearest[at] = nearest[at].min(z);
                    let under = target.pixels[at];
                    let over = |c: f64, u: u8| (alpha * c + (1.0 - alpha) * f64::from(u)).round() as u8;
                    target.pixels[at] = Color32::from_rgb(
                        over(lit[0], under.r()),
                        over(lit[1], under.g()),
                        over(lit[2], under.b()),
                    );
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "surface_render_tests.rs"]
pub(crate) mod tests;
