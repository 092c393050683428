//! The paint brush: a disc in the slice (2-D) or a ball (3-D) whose radius is in millimetres, so
//! it stays round under anisotropic spacing, and the rules that decide which voxels it may change
//! (paint over background only or any label, and an intensity range).

use crate::annotation::undo::StepRecorder;

/// What a primary drag in a view does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Tool {
    /// Click moves the crosshair, drag pans.
    #[default]
    Navigate,
    /// Paint the selected label.
    Brush,
    /// Paint background (0).
    Eraser,
}

impl Tool {
    /// Name shown on its button.
    pub fn name(self) -> &'static str {
        match self {
            Tool::Navigate => "Navigate",
            Tool::Brush => "Brush",
            Tool::Eraser => "Eraser",
        }
    }
}

/// The brush's footprint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum BrushShape {
    /// A disc in the slice being painted on.
    #[default]
    Disc,
    /// A ball reaching into the neighbouring slices.
    Ball,
}

/// Which voxels paint may replace.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PaintOver {
    /// Only background; erasing removes only the selected label.
    #[default]
    Background,
    /// Any voxel; erasing removes every label.
    AnyLabel,
}

/// Smallest and largest brush radius.
pub const RADIUS_RANGE_MM: (f64, f64) = (0.25, 100.0);
/// `[` and `]` divide or multiply the radius by this.
pub const RADIUS_STEP_FACTOR: f64 = 1.25;

/// The brush and eraser settings.
#[derive(Debug, Clone, PartialEq)]
pub struct BrushSettings {
    /// The active tool.
    pub tool: Tool,
    /// Disc or ball.
    pub shape: BrushShape,
    /// Radius in millimetres.
    pub radius_mm: f64,
    /// The label value painted (from dataset.json's labels).
    pub label: u32,
    /// Which voxels may be changed.
    pub paint_over: PaintOver,
    /// Paint only voxels whose intensity lies in `[low, high]`.
    pub intensity_range: Option<(f32, f32)>,
}

impl Default for BrushSettings {
    fn default() -> Self {
        Self {
            tool: Tool::Navigate,
            shape: BrushShape::Disc,
            radius_mm: 5.0,
            label: 1,
            paint_over: PaintOver::AnyLabel,
            intensity_range: None,
        }
    }
}

impl BrushSettings {
    /// Grows (`steps > 0`) or shrinks the radius by [`RADIUS_STEP_FACTOR`] per step.
    pub fn resize(&mut self, steps: i32) {
        self.radius_mm =
            (self.radius_mm * RADIUS_STEP_FACTOR.powi(steps)).clamp(RADIUS_RANGE_MM.0, RADIUS_RANGE_MM.1);
    }

    /// The rule a stroke of the active tool follows (`None` when navigating).
    pub fn rule(&self) -> Option<PaintRule> {
        let value = match self.tool {
            Tool::Navigate => return None,
            Tool::Brush => self.label as f32,
            Tool::Eraser => 0.0,
        };
        Some(PaintRule {
            value,
            selected_label: self.label as f32,
            paint_over: self.paint_over,
            intensity_range: self.intensity_range,
        })
    }
}

/// What one stroke writes and where it may write it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PaintRule {
    /// Value written (0 erases).
    pub value: f32,
    /// The selected label (what a protective eraser removes).
    pub selected_label: f32,
    /// Which voxels may be changed.
    pub paint_over: PaintOver,
    /// Only voxels whose intensity lies in this closed range.
    pub intensity_range: Option<(f32, f32)>,
}

impl PaintRule {
    /// Whether a voxel now holding `current`, with image intensity `intensity`, may be changed.
    pub fn allows(&self, current: f32, intensity: f32) -> bool {
        if let Some((low, high)) = self.intensity_range
            && !(low <= intensity && intensity <= high)
        {
            return false;
        }
        match (self.paint_over, self.value == 0.0) {
            (PaintOver::AnyLabel, _) => true,
            (PaintOver::Background, false) => current.abs() < 0.5,
            (PaintOver::Background, true) => current == self.selected_label,
        }
    }
}

/// Voxel offsets from the brush centre covered by the brush: every offset whose physical distance
/// `|offset ∘ spacing|` is at most `radius_mm`. A disc keeps the offset along `normal` at 0.
pub fn brush_offsets(
    spacing_mm: [f64; 3],
    radius_mm: f64,
    shape: BrushShape,
    normal: usize,
) -> Vec<[i64; 3]> {
    let extent = |axis: usize| -> i64 {
        if shape == BrushShape::Disc && axis == normal {
            0
        } else {
            (radius_mm / spacing_mm[axis].max(f64::MIN_POSITIVE)).floor() as i64
        }
    };
    let [ex, ey, ez] = [extent(0), extent(1), extent(2)];
    let squared_radius = radius_mm * radius_mm;
    let mut offsets = Vec::new();
    for dz in -ez..=ez {
        for dy in -ey..=ey {
            for dx in -ex..=ex {
                let distance = (dx as f64 * spacing_mm[0]).powi(2)
                    + (dy as f64 * spacing_mm[1]).powi(2)
                    + (dz as f64 * spacing_mm[2]).powi(2);
                if distance <= squared_radius {
                    offsets.push([dx, dy, dz]);
                }
            }
        }
    }
    offsets
}

/// A label being painted and the image that limits it, both of `shape` (x fastest).
pub struct Canvas<'a> {
    /// The label's voxels.
    pub label: &'a mut [f32],
    /// The image's voxels (for the intensity range).
    pub image: &'a [f32],
    /// Voxels along x, y, z.
    pub shape: [usize; 3],
}

impl Canvas<'_> {
    /// Paints the brush `offsets` around `centre` under `rule`, clipped to the volume.
    pub fn stamp(
        &mut self,
        centre: [usize; 3],
        offsets: &[[i64; 3]],
        rule: &PaintRule,
        recorder: &mut StepRecorder,
    ) {
        let [nx, ny, nz] = self.shape;
        for offset in offsets {
            let x = centre[0] as i64 + offset[0];
            let y = centre[1] as i64 + offset[1];
            let z = centre[2] as i64 + offset[2];
            if x < 0 || y < 0 || z < 0 || x >= nx as i64 || y >= ny as i64 || z >= nz as i64 {
                continue;
            }
            let voxel = [x as usize, y as usize, z as usize];
            let index = (voxel[2] * ny + voxel[1]) * nx + voxel[0];
            let (Some(current), Some(intensity)) = (self.label.get(index), self.image.get(index)) else {
                continue;
            };
            if rule.allows(*current, *intensity) {
                recorder.set(self.label, index, voxel, rule.value);
            }
        }
    }

    /// Paints along the straight line from `from` to `to` (both included), one stamp per voxel
    /// step, so a fast drag leaves no gaps.
    pub fn line(
        &mut self,
        from: [usize; 3],
        to: [usize; 3],
        offsets: &[[i64; 3]],
        rule: &PaintRule,
        recorder: &mut StepRecorder,
    ) {
        let delta = [0, 1, 2].map(|a| to[a] as i64 - from[a] as i64);
        let steps = delta.iter().map(|d| d.abs()).max().unwrap_or(0).max(1);
        let mut last = None;
        for step in 0..=steps {
            let t = step as f64 / steps as f64;
            let point = [0, 1, 2].map(|a| (from[a] as f64 + t * delta[a] as f64).round() as usize);
            if last != Some(point) {
                self.stamp(point, offsets, rule, recorder);
                last = Some(point);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::volume::Affine;

    const SHAPE: [usize; 3] = [40, 30, 12];
    const SPACING_MM: [f64; 3] = [0.7, 1.3, 2.9];

    /// A rotated, anisotropic voxel-to-world affine: distances are measured in world space.
    fn oblique() -> Affine {
        let (sin, cos) = 0.3f64.sin_cos();
        let [sx, sy, sz] = SPACING_MM;
        Affine::from_parts(
            [
                [cos * sx, -sin * sy, 0.0],
                [sin * sx, cos * sy, 0.0],
                [0.0, 0.0, sz],
            ],
            [-12.0, 40.0, 7.0],
        )
    }

    fn world_distance(affine: &Affine, a: [usize; 3], b: [usize; 3]) -> f64 {
        let [p, q] = [a, b].map(|v| affine.apply(v.map(|i| i as f64)));
        (0..3).map(|i| (p[i] - q[i]).powi(2)).sum::<f64>().sqrt()
    }

    fn paint(centre: [usize; 3], radius_mm: f64, shape: BrushShape, rule: &PaintRule) -> Vec<f32> {
        let count: usize = SHAPE.iter().product();
        let mut label = vec![0.0; count];
        let image = vec![0.0; count];
        let offsets = brush_offsets(oblique().column_norms(), radius_mm, shape, 2);
        let mut canvas = Canvas {
            label: &mut label,
            image: &image,
            shape: SHAPE,
        };
        canvas.stamp(centre, &offsets, rule, &mut StepRecorder::default());
        label
    }

    const PAINT_ONE: PaintRule = PaintRule {
        value: 1.0,
        selected_label: 1.0,
        paint_over: PaintOver::AnyLabel,
        intensity_range: None,
    };

    #[test]
    fn a_ball_is_round_in_millimetres_under_anisotropic_spacing() {
        let affine = oblique();
        let radius_mm = 10.0;
        // In the middle, and against a corner (clipped, never wrapped round).
        for centre in [[20, 15, 6], [1, 28, 0]] {
            let label = paint(centre, radius_mm, BrushShape::Ball, &PAINT_ONE);
            let mut painted = 0;
            for z in 0..SHAPE[2] {
                for y in 0..SHAPE[1] {
                    for x in 0..SHAPE[0] {
                        let distance = world_distance(&affine, [x, y, z], centre);
                        let value = label[(z * SHAPE[1] + y) * SHAPE[0] + x];
                        if distance < radius_mm - 1e-9 {
                            assert_eq!(value, 1.0, "({x}, {y}, {z}) at {distance} mm not painted");
                            painted += 1;
                        } else if distance > radius_mm + 1e-9 {
                            assert_eq!(value, 0.0, "({x}, {y}, {z}) at {distance} mm painted");
                        }
                    }
                }
            }
            assert!(painted > 100, "{painted}");
        }
    }

    #[test]
    fn a_disc_stays_in_its_slice() {
        let centre = [20, 15, 6];
        let label = paint(centre, 4.0, BrushShape::Disc, &PAINT_ONE);
        let affine = oblique();
        for (index, value) in label.iter().enumerate() {
            let voxel = [index % 40, index / 40 % 30, index / 1200];
            let inside = voxel[2] == 6 && world_distance(&affine, voxel, centre) <= 4.0 + 1e-9;
            assert_eq!(*value == 1.0, inside, "{voxel:?}");
        }
    }

    #[test]
    fn rules_protect_labels_and_limit_intensity() {
        let only_background = PaintRule {
            value: 2.0,
            selected_label: 2.0,
            paint_over: PaintOver::Background,
            intensity_range: Some((-10.0, 50.0)),
        };
        assert!(only_background.allows(0.0, 0.0));
        assert!(!only_background.allows(1.0, 0.0), "another label is protected");
        assert!(only_background.allows(0.0, -10.0) && only_background.allows(0.0, 50.0));
        assert!(!only_background.allows(0.0, 50.5) && !only_background.allows(0.0, f32::NAN));
        let any = PaintRule {
            paint_over: PaintOver::AnyLabel,
            intensity_range: None,
            ..only_background
        };
        assert!(any.allows(1.0, 1e6));
        // A protective eraser removes only the selected label.
        let eraser = PaintRule {
            value: 0.0,
            ..only_background
        };
        assert!(eraser.allows(2.0, 0.0));
        assert!(!eraser.allows(1.0, 0.0));

        // On a volume: intensity ramp along x, label 1 on the left half.
        let shape = [10, 1, 1];
        let image: Vec<f32> = (0..10).map(|x| x as f32 * 10.0).collect();
        let mut label: Vec<f32> = (0..10).map(|x| if x < 5 { 1.0 } else { 0.0 }).collect();
        let offsets: Vec<[i64; 3]> = (0..10).map(|x| [x, 0, 0]).collect();
        let mut canvas = Canvas {
            label: &mut label,
            image: &image,
            shape,
        };
        let mut recorder = StepRecorder::default();
        canvas.stamp([0, 0, 0], &offsets, &only_background, &mut recorder);
        // x 0..5 hold label 1 (protected); x 5 (50) is in range; x ≥ 6 (60+) are too bright.
        assert_eq!(label, [1.0, 1.0, 1.0, 1.0, 1.0, 2.0, 0.0, 0.0, 0.0, 0.0]);
        assert_eq!(recorder.len(), 1);
    }

    #[test]
    fn resizing_is_bounded_and_lines_have_no_gaps() {
        let mut settings = BrushSettings::default();
        settings.resize(1);
        assert!((settings.radius_mm - 6.25).abs() < 1e-12);
        settings.resize(-100);
        assert_eq!(settings.radius_mm, RADIUS_RANGE_MM.0);
        assert_eq!(BrushSettings::default().rule(), None);

        let shape = [20, 20, 1];
        let mut label = vec![0.0; 400];
        let image = vec![0.0; 400];
        let mut canvas = Canvas {
            label: &mut label,
            image: &image,
            shape,
        };
        canvas.line(
            [1, 2, 0],
            [17, 9, 0],
            &[[0, 0, 0]],
            &PAINT_ONE,
            &mut StepRecorder::default(),
        );
        // One voxel per column from x = 1 to 17.
        for x in 1..=17 {
            let column: f32 = (0..20).map(|y| label[y * 20 + x]).sum();
            assert_eq!(column, 1.0, "column {x}");
        }
    }
}
