//! Surfaces of labels for the 3D view and for export: an isosurface of a scalar field by
//! marching tetrahedra (each grid cube split into the six tetrahedra of Freudenthal's
//! triangulation, so neighbouring cubes share their faces' diagonals and the surface is closed
//! without the ambiguous cases of the 256-case cube table), and a label's surface as the 0.5
//! level of its indicator smoothed by a Gaussian (as ITK-SNAP and 3D Slicer smooth before
//! marching) and kept between the labelled and the unlabelled voxel centres, in world
//! millimetres through the scan's affine.

mod decimate;
mod export;
mod ray;
mod smooth;

pub use export::{MeshFormat, write_mesh};
pub use smooth::gaussian_smooth;

use crate::edit::label::{LabelValue, LabelVoxels};
use crate::volume::Affine;
use crate::volume::vec3::{add, cross, dot, norm, scale, sub};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

/// An indexed triangle mesh in world millimetres; triangles wind counter-clockwise seen from
/// outside (their normals point out of the enclosed region).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Mesh {
    /// Vertex positions, mm.
    pub positions: Vec<[f32; 3]>,
    /// Unit vertex normals, pointing outwards (area-weighted means of the faces' normals).
    pub normals: Vec<[f32; 3]>,
    /// Vertex indices of each triangle.
    pub triangles: Vec<[u32; 3]>,
}

impl Mesh {
    /// Whether there is nothing to draw.
    pub fn is_empty(&self) -> bool {
        self.triangles.is_empty()
    }

    /// The total area of the triangles, mm².
    pub fn area_mm2(&self) -> f64 {
        self.triangles
            .iter()
            .map(|t| {
                let [a, b, c] = t.map(|i| as_f64(self.positions[i as usize]));
                norm(cross(sub(b, a), sub(c, a))) / 2.0
            })
            .sum()
    }

    /// The volume the surface encloses, mm³ (the divergence theorem over the triangles: exact
    /// for a closed, outward-wound mesh).
    pub fn enclosed_volume_mm3(&self) -> f64 {
        self.triangles
            .iter()
            .map(|t| {
                let [a, b, c] = t.map(|i| as_f64(self.positions[i as usize]));
                dot(a, cross(b, c)) / 6.0
            })
            .sum()
    }

    /// The smallest box holding every vertex: (min, max), mm; `None` when empty.
    pub fn bounds(&self) -> Option<([f32; 3], [f32; 3])> {
        let first = *self.positions.first()?;
        Some(self.positions.iter().fold((first, first), |(lo, hi), p| {
            (
                [lo[0].min(p[0]), lo[1].min(p[1]), lo[2].min(p[2])],
                [hi[0].max(p[0]), hi[1].max(p[1]), hi[2].max(p[2])],
            )
        }))
    }
}

/// Why a surface was not made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MeshError {
    /// The field or label does not have the grid's voxel count.
    #[error("the volume has {found} voxels where its grid {shape:?} has {expected}")]
    WrongSize {
        /// The grid.
        shape: [usize; 3],
        /// Voxels the grid has.
        expected: usize,
        /// Voxels given.
        found: usize,
    },
    /// The caller asked to stop.
    #[error("stopped")]
    Cancelled,
}

/// The corners of a unit cube as offsets (x, y, z); corner `c` is `(c & 1, c >> 1 & 1, c >> 2)`.
const CORNERS: [[usize; 3]; 8] = [
    [0, 0, 0],
    [1, 0, 0],
    [0, 1, 0],
    [1, 1, 0],
    [0, 0, 1],
    [1, 0, 1],
    [0, 1, 1],
    [1, 1, 1],
];

/// Freudenthal's six tetrahedra of a cube: the paths from corner 0 to corner 7 that raise one
/// coordinate at a time, one per order of the three axes.
const TETRAHEDRA: [[usize; 4]; 6] = [
    [0, 1, 3, 7], // x, y, z
    [0, 1, 5, 7], // x, z, y
    [0, 2, 3, 7], // y, x, z
    [0, 2, 6, 7], // y, z, x
    [0, 4, 5, 7], // z, x, y
    [0, 4, 6, 7], // z, y, x
];

/// The surface `field = iso` of `field` (x fastest, `shape`), with the region `field >= iso`
/// inside, in world millimetres through `world_from_voxel`. Cells on the grid's border are
/// not closed: pad the field with values below `iso` for a closed surface.
///
/// # Errors
/// The field does not have the grid's voxel count, or `cancel` was set.
pub fn isosurface(
    field: &[f32],
    shape: [usize; 3],
    iso: f32,
    world_from_voxel: &Affine,
    cancel: &AtomicBool,
) -> Result<Mesh, MeshError> {
    let voxel_mesh = isosurface_in_voxels(field, shape, iso, [0.0; 3], cancel)?;
    Ok(to_world(voxel_mesh, world_from_voxel))
}

/// A mesh in voxel coordinates before the affine: positions and oriented triangles.
struct VoxelMesh {
    positions: Vec<[f64; 3]>,
    triangles: Vec<[u32; 3]>,
}

/// [`isosurface`] in voxel coordinates, each position shifted by `origin`.
fn isosurface_in_voxels(
    field: &[f32],
    shape: [usize; 3],
    iso: f32,
    origin: [f64; 3],
    cancel: &AtomicBool,
) -> Result<VoxelMesh, MeshError> {
    let [nx, ny, nz] = shape;
    let expected = nx * ny * nz;
    if field.len() != expected {
        return Err(MeshError::WrongSize {
            shape,
            expected,
            found: field.len(),
        });
    }
    let mut mesh = VoxelMesh {
        positions: Vec::new(),
        triangles: Vec::new(),
    };
    if nx < 2 || ny < 2 || nz < 2 {
        return Ok(mesh);
    }
    let index = |p: [usize; 3]| (p[2] * ny + p[1]) * nx + p[0];
    // NaN counts as outside.
    let inside = |value: f32| value >= iso;
    let mut edges: HashMap<(usize, usize), u32> = HashMap::new();
    for z in 0..nz - 1 {
        if cancel.load(Ordering::Relaxed) {
            return Err(MeshError::Cancelled);
        }
        for y in 0..ny - 1 {
            for x in 0..nx - 1 {
                let corners = CORNERS.map(|c| [x + c[0], y + c[1], z + c[2]]);
                let ids = corners.map(index);
                let values = ids.map(|i| field[i]);
                let count = values.iter().filter(|v| inside(**v)).count();
                if count == 0 || count == 8 {
                    continue;
                }
                for tetrahedron in TETRAHEDRA {
                    let corner = |k: usize| Corner {
                        id: ids[tetrahedron[k]],
                        position: corners[tetrahedron[k]].map(|c| c as f64),
                        value: values[tetrahedron[k]],
                    };
                    let four = [corner(0), corner(1), corner(2), corner(3)];
                    march_tetrahedron(&four, iso, origin, &mut edges, &mut mesh);
                }
            }
        }
    }
    Ok(mesh)
}

/// One corner of a tetrahedron: its grid index, voxel position and field value.
#[derive(Clone, Copy)]
struct Corner {
    id: usize,
    position: [f64; 3],
    value: f32,
}

/// Adds the triangles of one tetrahedron, sharing vertices on grid edges through `edges`.
fn march_tetrahedron(
    four: &[Corner; 4],
    iso: f32,
    origin: [f64; 3],
    edges: &mut HashMap<(usize, usize), u32>,
    mesh: &mut VoxelMesh,
) {
    let (inner, outer): (Vec<Corner>, Vec<Corner>) = four.iter().partition(|c| c.value >= iso);
    if inner.is_empty() || outer.is_empty() {
        return;
    }
    // Triangles face from the inside corners towards the outside ones.
    let centre = |corners: &[Corner]| {
        let sum = corners.iter().fold([0.0; 3], |s, c| add(s, c.position));
        scale(sum, 1.0 / corners.len() as f64)
    };
    let outwards = sub(centre(&outer), centre(&inner));
    let mut vertex = |a: Corner, b: Corner| -> u32 {
        let key = (a.id.min(b.id), a.id.max(b.id));
        *edges.entry(key).or_insert_with(|| {
            let (from, to) = if a.value >= iso { (a, b) } else { (b, a) };
            let span = f64::from(to.value) - f64::from(from.value);
            let t = if span == 0.0 {
                0.5
            } else {
                ((f64::from(iso) - f64::from(from.value)) / span).clamp(0.0, 1.0)
            };
            let p = add(from.position, scale(sub(to.position, from.position), t));
            mesh.positions.push(add(p, origin));
            (mesh.positions.len() - 1) as u32
        })
    };
    let polygon: Vec<u32> = match (inner.len(), outer.len()) {
        (1, 3) => outer.iter().map(|&o| vertex(inner[0], o)).collect(),
        (3, 1) => inner.iter().map(|&i| vertex(i, outer[0])).collect(),
        _ => vec![
            vertex(inner[0], outer[0]),
            vertex(inner[0], outer[1]),
            vertex(inner[1], outer[1]),
            vertex(inner[1], outer[0]),
        ],
    };
    for k in 1..polygon.len() - 1 {
        let mut triangle = [polygon[0], polygon[k], polygon[k + 1]];
        let [a, b, c] = triangle.map(|i| mesh.positions[i as usize]);
        if dot(cross(sub(b, a), sub(c, a)), outwards) < 0.0 {
            triangle.swap(1, 2);
        }
        mesh.triangles.push(triangle);
    }
}

/// Maps a voxel-space mesh to world millimetres, keeps the winding outward (an affine that
/// mirrors reverses it) and computes the vertex normals.
fn to_world(mesh: VoxelMesh, world_from_voxel: &Affine) -> Mesh {
    let mirrored = crate::volume::determinant(&world_from_voxel.linear()) < 0.0;
    let positions: Vec<[f64; 3]> = mesh
        .positions
        .iter()
        .map(|&p| world_from_voxel.apply(p))
        .collect();
    let triangles: Vec<[u32; 3]> = mesh
        .triangles
        .into_iter()
        .map(|[a, b, c]| if mirrored { [a, c, b] } else { [a, b, c] })
        .collect();
    with_area_weighted_normals(&positions, triangles)
}

/// The mesh of these world positions and triangles, each vertex's normal the area-weighted mean
/// of its triangles' normals.
fn with_area_weighted_normals(positions: &[[f64; 3]], triangles: Vec<[u32; 3]>) -> Mesh {
    let mut normals = vec![[0.0f64; 3]; positions.len()];
    for t in &triangles {
        let [a, b, c] = t.map(|i| positions[i as usize]);
        // The cross product's length is twice the area: an area-weighted sum.
        let n = cross(sub(b, a), sub(c, a));
        for &i in t {
            normals[i as usize] = add(normals[i as usize], n);
        }
    }
    Mesh {
        positions: positions.iter().map(|p| p.map(|v| v as f32)).collect(),
        normals: normals
            .iter()
            .map(|n| {
                let length = norm(*n);
                if length > 0.0 {
                    scale(*n, 1.0 / length)
                } else {
                    [0.0, 0.0, 1.0]
                }
                .map(|v| v as f32)
            })
            .collect(),
        triangles,
    }
}

/// How a label's surface is made.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SurfaceOptions {
    /// Standard deviation of the Gaussian that smooths the label's indicator, voxels (0: none,
    /// the surface then cuts each edge between a labelled and an unlabelled voxel halfway).
    pub sigma_voxels: f64,
}

impl Default for SurfaceOptions {
    /// One voxel: smooth enough to hide the voxel steps, little enough to keep small lesions.
    fn default() -> Self {
        Self { sigma_voxels: 1.0 }
    }
}

/// How far from 0.5 the smoothed indicator is kept at voxel centres (see [`label_surface`]).
const CENTRE_MARGIN: f32 = 0.05;

/// The surface of label `value` in `voxels` (x fastest, `shape`): the 0.5 level of its
/// indicator after Gaussian smoothing, kept between every labelled voxel centre (inside) and
/// every unlabelled one (outside), closed at the grid's border, in world millimetres.
/// Only the label's bounding box (with the smoothing's reach) is processed. `None` when the
/// label has no voxel.
///
/// # Errors
/// The label does not have the grid's voxel count, or `cancel` was set.
pub fn label_surface<L: LabelValue>(
    voxels: &dyn LabelVoxels<L>,
    shape: [usize; 3],
    value: u32,
    world_from_voxel: &Affine,
    options: &SurfaceOptions,
    cancel: &AtomicBool,
) -> Result<Option<Mesh>, MeshError> {
    let expected = shape.iter().product::<usize>();
    if voxels.voxel_count() != expected {
        return Err(MeshError::WrongSize {
            shape,
            expected,
            found: voxels.voxel_count(),
        });
    }
    let [nx, ny, _] = shape;
    let is_label = |i: usize| voxels.voxel(i).is_some_and(|v| v.label() == value);
    let Some((low, high)) = bounding_box(
        (0..expected)
            .filter(|&i| is_label(i))
            .map(|i| [i % nx, i / nx % ny, i / (nx * ny)]),
    ) else {
        return Ok(None);
    };
    if cancel.load(Ordering::Relaxed) {
        return Err(MeshError::Cancelled);
    }
    // The box grows by the smoothing's reach plus one voxel of background, so the surface closes
    // even where the label touches the grid's border.
    let margin = smooth::kernel_radius(options.sigma_voxels) + 1;
    let start = low.map(|v| v as isize - margin as isize);
    let size: [usize; 3] = std::array::from_fn(|a| high[a] - low[a] + 1 + 2 * margin);
    let mut field = vec![0.0f32; size.iter().product()];
    for z in low[2]..=high[2] {
        for y in low[1]..=high[1] {
            for x in low[0]..=high[0] {
                if is_label((z * ny + y) * nx + x) {
                    let [fx, fy, fz] = [x - low[0] + margin, y - low[1] + margin, z - low[2] + margin];
                    field[(fz * size[1] + fy) * size[0] + fx] = 1.0;
                }
            }
        }
    }
    let mut smooth = gaussian_smooth(&field, size, options.sigma_voxels);
    // Smoothing may not move the surface past a voxel centre (as ITK's anti-aliasing constrains
    // it): a labelled voxel stays inside, so a one-slice stroke or a small lesion keeps a surface,
    // and an unlabelled one outside, so two labels' regions are not bridged.
    for (value, &labelled) in smooth.iter_mut().zip(&field) {
        *value = if labelled > 0.5 {
            value.max(0.5 + CENTRE_MARGIN)
        } else {
            value.min(0.5 - CENTRE_MARGIN)
        };
    }
    let field = smooth;
    let origin = start.map(|s| s as f64);
    let mesh = isosurface_in_voxels(&field, size, 0.5, origin, cancel)?;
    Ok(Some(to_world(mesh, world_from_voxel)))
}

/// The smallest box (inclusive corners) holding every point; `None` without points.
fn bounding_box(points: impl Iterator<Item = [usize; 3]>) -> Option<([usize; 3], [usize; 3])> {
    points.fold(None, |found, p| {
        Some(match found {
            None => (p, p),
            Some((lo, hi)) => (
                std::array::from_fn(|a| lo[a].min(p[a])),
                std::array::from_fn(|a| hi[a].max(p[a])),
            ),
        })
    })
}

fn as_f64(p: [f32; 3]) -> [f64; 3] {
    p.map(f64::from)
}

#[cfg(test)]
mod tests;
