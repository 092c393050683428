//! Writing a mesh for other programs: binary STL (3D printing, ITK-SNAP, Slicer) and Wavefront
//! OBJ with normals (Blender, MeshLab), chosen by the file's extension.

use super::Mesh;
use std::io::Write;
use std::path::Path;

/// A mesh file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MeshFormat {
    /// Binary STL: an 80-byte header, a triangle count, 50 bytes per triangle.
    Stl,
    /// Wavefront OBJ: `v`, `vn` and `f v//vn` lines.
    Obj,
}

impl MeshFormat {
    /// The format a file name asks for (`.stl` or `.obj`, any case).
    ///
    /// # Errors
    /// Any other extension, with the ones that work.
    pub fn from_path(path: &Path) -> Result<Self, String> {
        let extension = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match extension.as_deref() {
            Some("stl") => Ok(Self::Stl),
            Some("obj") => Ok(Self::Obj),
            _ => Err(format!(
                "{}: unknown mesh format; name the file .stl or .obj",
                path.display()
            )),
        }
    }
}

/// Writes `mesh` to `path` in the format its extension names, atomically (a failed write
/// leaves any earlier file as it was).
///
/// # Errors
/// An unknown extension, or the file cannot be written.
pub fn write_mesh(path: &Path, mesh: &Mesh) -> Result<(), String> {
    let format = MeshFormat::from_path(path)?;
    crate::volume::write_atomically(path, |w| match format {
        MeshFormat::Stl => write_stl(w, mesh),
        MeshFormat::Obj => write_obj(w, mesh),
    })
    .map_err(|e| format!("{}: cannot write: {e}", path.display()))
}

fn write_stl(w: &mut dyn Write, mesh: &Mesh) -> std::io::Result<()> {
    let mut header = [b' '; 80];
    let title = b"MedVisionLlama Studio surface, millimetres";
    header[..title.len()].copy_from_slice(title);
    w.write_all(&header)?;
    let count = u32::try_from(mesh.triangles.len())
        .map_err(|_| std::io::Error::other("more triangles than STL can count (2^32)"))?;
    w.write_all(&count.to_le_bytes())?;
    for triangle in &mesh.triangles {
        let [a, b, c] = triangle.map(|i| mesh.positions[i as usize]);
        let normal = face_normal(a, b, c);
        for value in normal.iter().chain(&a).chain(&b).chain(&c) {
            w.write_all(&value.to_le_bytes())?;
        }
        w.write_all(&[0, 0])?;
    }
    Ok(())
}

fn write_obj(w: &mut dyn Write, mesh: &Mesh) -> std::io::Result<()> {
    writeln!(w, "# MedVisionLlama Studio surface, millimetres")?;
    for p in &mesh.positions {
        writeln!(w, "v {} {} {}", p[0], p[1], p[2])?;
    }
    for n in &mesh.normals {
        writeln!(w, "vn {} {} {}", n[0], n[1], n[2])?;
    }
    for t in &mesh.triangles {
        let [a, b, c] = t.map(|i| i + 1);
        writeln!(w, "f {a}//{a} {b}//{b} {c}//{c}")?;
    }
    Ok(())
}

/// The unit normal of triangle (a, b, c), counter-clockwise; zero for a degenerate one.
fn face_normal(a: [f32; 3], b: [f32; 3], c: [f32; 3]) -> [f32; 3] {
    let u = [b[0] - a[0], b[1] - a[1], b[2] - a[2]];
    let v = [c[0] - a[0], c[1] - a[1], c[2] - a[2]];
    let n = [
        u[1] * v[2] - u[2] * v[1],
        u[2] * v[0] - u[0] * v[2],
        u[0] * v[1] - u[1] * v[0],
    ];
    let length = (n[0] * n[0] + n[1] * n[1] + n[2] * n[2]).sqrt();
    if length > 0.0 {
        n.map(|x| x / length)
    } else {
        [0.0; 3]
    }
}
