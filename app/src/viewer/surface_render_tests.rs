use super::*;
use engine::mesh::isosurface;
use engine::volume::Affine;
use std::sync::atomic::AtomicBool;

/// The surface of a ball of `radius` mm around `centre` on a 1 mm grid (the 0 level of the
/// distance field), within 1 % of the sphere (checked in the engine's tests).
pub(crate) fn sphere(centre: [f64; 3], radius: f64) -> Mesh {
    let n = (2.0 * radius + 6.0).ceil() as usize;
    let start = centre.map(|c| c - n as f64 / 2.0);
    let field: Vec<f32> = (0..n * n * n)
        .map(|i| {
            let p = [i % n, i / n % n, i / (n * n)];
            let d2: f64 = (0..3).map(|a| (start[a] + p[a] as f64 - centre[a]).powi(2)).sum();
            (radius - d2.sqrt()) as f32
        })
        .collect();
    let affine = Affine::from_parts([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], start);
    isosurface(&field, [n; 3], 0.0, &affine, &AtomicBool::new(false)).expect("sphere")
}

#[test]
fn projection_and_unprojection_are_inverse_and_the_front_view_is_radiological() {
    let scene = Scene {
        centre: [10.0, -5.0, 30.0],
        radius: 50.0,
    };
    let camera = Camera {
        yaw: 0.0,
        pitch: 0.0,
        zoom: 2.0,
        pan: [7.0, -3.0],
    };
    let front = Projection::new(&camera, &scene, [200, 100]);
    let centre = front.project(scene.centre);
    assert_eq!(
        centre,
        [107.0, 47.0, 0.0],
        "the centre lands at the middle plus the pan"
    );
    let step = |axis: usize| {
        let mut p = scene.centre;
        p[axis] += 1.0;
        front.project(p)
    };
    // Zoom 2 fits the sphere's radius in a quarter of the smaller side: 100 / (2 · 50) · 2 = 2 px/mm.
    assert_eq!(
        step(0),
        [105.0, 47.0, 0.0],
        "the patient's right (+x) to the screen's left"
    );
    assert_eq!(step(2), [107.0, 45.0, 0.0], "superior (+z) up");
    assert_eq!(step(1), [107.0, 47.0, -1.0], "anterior (+y) towards the viewer");
    let turned = Projection::new(
        &Camera {
            yaw: 0.7,
            pitch: -0.4,
            zoom: 1.3,
            pan: [2.0, 9.0],
        },
        &scene,
        [320, 240],
    );
    for p in [[0.0, 0.0, 0.0], [13.0, -40.0, 2.5], [-7.0, 3.0, 90.0]] {
        let [x, y, depth] = turned.project(p);
        let back = turned.unproject(x, y, depth);
        for a in 0..3 {
            assert!((back[a] - p[a]).abs() < 1e-9, "{p:?} → {back:?}");
        }
    }
}

#[test]
fn a_rendered_sphere_covers_its_disc_and_a_click_finds_its_front_surface() {
    let (centre, radius) = ([3.0, 4.0, -2.0], 12.0);
    let mesh = sphere(centre, radius);
    let scene = Scene { centre, radius: 20.0 };
    let size = [160, 160];
    let camera = Camera::default();
    let projection = Projection::new(&camera, &scene, size);
    let colour = Color32::from_rgb(200, 100, 50);
    let drawn = render(&[(&mesh, colour)], &projection, size);
    // 160 px over 40 mm: 4 px/mm, so the sphere's outline is a disc of radius 48 px: π·48² pixels,
    // give or take its rim (one pixel around: 2π·48 ≈ 300 pixels, under 5 %).
    let covered = drawn.depth.iter().filter(|d| d.is_finite()).count() as f64;
    let disc = std::f64::consts::PI * 48.0f64.powi(2);
    assert!(
        (covered - disc).abs() < 0.05 * disc,
        "{covered} pixels for a disc of {disc}"
    );
    // The middle pixel shows the point of the sphere nearest the viewer, lit head-on.
    let picked = drawn.pick(80, 80).expect("the sphere is under the middle");
    let distance = (0..3)
        .map(|a| (picked[a] - centre[a]).powi(2))
        .sum::<f64>()
        .sqrt();
    assert!(
        (distance - radius).abs() < 0.15,
        "picked {picked:?} at {distance} mm"
    );
    assert!(
        projection.project(picked)[2] < -radius + 0.15,
        "the front, not the back"
    );
    let middle = drawn.image.pixels[80 * 160 + 80];
    assert!(middle.r() >= 195 && middle.g() >= 97, "head-on light: {middle:?}");
    // Near the outline the surface turns away: darker, down towards the ambient light.
    let rim = drawn.image.pixels[80 * 160 + 80 + 46];
    assert!(rim.r() < 140, "{rim:?}");
    assert_eq!(drawn.pick(2, 2), None, "background");
    assert_eq!(drawn.image.pixels[0], BACKGROUND);
}

/// Straight from the front (no turn, no zoom or pan) at a 40 mm wide scene in 80 × 80 pixels:
/// 2 px/mm, the scene's centre at pixel (40, 40).
fn front_view_80() -> (Projection, [usize; 2]) {
    let camera = Camera {
        yaw: 0.0,
        pitch: 0.0,
        zoom: 1.0,
        pan: [0.0; 2],
    };
    let scene = Scene {
        centre: [0.0; 3],
        radius: 20.0,
    };
    let size = [80, 80];
    (Projection::new(&camera, &scene, size), size)
}

#[test]
fn the_nearer_surface_hides_the_farther_whatever_the_order() {
    let (projection, size) = front_view_80();
    // Anterior (+y) is nearer the viewer from the front.
    let near = sphere([0.0, 10.0, 0.0], 4.0);
    let far = sphere([0.0, -5.0, 0.0], 9.0);
    let (red, blue) = (Color32::from_rgb(250, 0, 0), Color32::from_rgb(0, 0, 250));
    for order in [[(&near, red), (&far, blue)], [(&far, blue), (&near, red)]] {
        let drawn = render(&order, &projection, size);
        let middle = drawn.image.pixels[40 * 80 + 40];
        assert!(middle.r() > 200 && middle.b() == 0, "{middle:?}");
        // Beside the small sphere the big one shows.
        let beside = drawn.image.pixels[40 * 80 + 40 + 12];
        assert!(beside.b() > 100 && beside.r() == 0, "{beside:?}");
    }
}

#[test]
fn a_translucent_surface_blends_over_what_lies_inside_it_once() {
    // An opaque blue ball (R = 4) inside a half-opaque red one (R = 10), seen from the front at
    // 2 px/mm. Head-on the light is 1: the middle is ½ red over blue. About 7 mm off the middle
    // the red ball's normal makes cos = √(1 − (d/R)²) with the view, its light is 0.3 + 0.7·cos,
    // and it is blended once over the background (its far side, turned away, is skipped).
    let (projection, size) = front_view_80();
    let (outer, inner) = (sphere([0.0; 3], 10.0), sphere([0.0; 3], 4.0));
    let half_red = Color32::from_rgba_unmultiplied(200, 0, 0, 128);
    let blue = Color32::from_rgb(0, 0, 200);
    let alpha = 128.0 / 255.0;
    let near = |found: u8, expected: f64, tolerance: f64| (f64::from(found) - expected).abs() <= tolerance;
    for order in [
        [(&outer, half_red), (&inner, blue)],
        [(&inner, blue), (&outer, half_red)],
    ] {
        let drawn = render(&order, &projection, size);
        let middle = drawn.image.pixels[40 * 80 + 40];
        assert!(
            near(middle.r(), alpha * 200.0, 2.0) && near(middle.b(), (1.0 - alpha) * 200.0, 2.0),
            "{middle:?}"
        );
        let off = drawn.image.pixels[40 * 80 + 40 + 14];
        // Pixel (54, 40)'s centre lies 14.5 px right of and 0.5 px below the scene's centre.
        let off_axis = (7.25f64.powi(2) + 0.25f64.powi(2)).sqrt() / 10.0;
        let lit = 0.3 + 0.7 * (1.0 - off_axis.powi(2)).sqrt();
        let expected = [
            alpha * 200.0 * lit + (1.0 - alpha) * f64::from(BACKGROUND.r()),
            (1.0 - alpha) * f64::from(BACKGROUND.g()),
            (1.0 - alpha) * f64::from(BACKGROUND.b()),
        ];
        assert!(
            near(off.r(), expected[0], 4.0)
                && near(off.g(), expected[1], 2.0)
                && near(off.b(), expected[2], 2.0),
            "{off:?}, expected {expected:?}"
        );
        // A click picks the nearest surface drawn: the translucent ball's front.
        let picked = drawn.pick(40, 40).expect("a surface in the middle");
        let distance = picked.iter().map(|v| v * v).sum::<f64>().sqrt();
        assert!((distance - 10.0).abs() < 0.15, "picked {picked:?}");
    }
    // Opacity 0 draws nothing: the blue ball alone, as if the red one were hidden.
    let clear = Color32::from_rgba_unmultiplied(200, 0, 0, 0);
    let drawn = render(&[(&outer, clear), (&inner, blue)], &projection, size);
    let alone = render(&[(&inner, blue)], &projection, size);
    assert!(drawn.image.pixels == alone.image.pixels && drawn.depth == alone.depth);
    assert_eq!(drawn.image.pixels[40 * 80 + 40 + 14], BACKGROUND);
}

#[test]
fn a_ray_cast_finds_the_point_the_depth_buffer_shows() {
    // Two balls drawn by the rasteriser: for every pixel, the point read from its depth buffer
    // and the point a ray through the pixel first meets are the same surface point (the
    // rasteriser interpolates depth linearly inside a triangle, exactly as the ray meets its
    // plane), and the background gives neither. Pixels on a silhouette may go either way.
    let meshes = [sphere([0.0, 0.0, 0.0], 10.0), sphere([8.0, 5.0, -3.0], 7.0)];
    let shown: Vec<(&Mesh, Color32)> = meshes.iter().map(|m| (m, Color32::WHITE)).collect();
    let scene = Scene {
        centre: [2.0, 1.0, 0.0],
        radius: 20.0,
    };
    let camera = Camera {
        yaw: 0.4,
        pitch: 0.5,
        zoom: 1.1,
        pan: [3.0, 2.0],
    };
    let size = [90, 70];
    let projection = Projection::new(&camera, &scene, size);
    let drawn = render(&shown, &projection, size);
    let refs: Vec<&Mesh> = meshes.iter().collect();
    let (mut agree, mut hits, mut edge) = (0, 0, 0);
    for y in 0..size[1] {
        for x in 0..size[0] {
            let from_depth = drawn.pick(x, y);
            let from_ray = pick_by_ray(&refs, &projection, x as f64, y as f64, 100.0);
            match (from_depth, from_ray) {
                (Some(a), Some(b)) => {
                    hits += 1;
                    let distance = (0..3).map(|k| (a[k] - b[k]).powi(2)).sum::<f64>().sqrt();
                    if distance < 1e-3 {
                        agree += 1;
                    }
                }
                (None, None) => {}
                _ => edge += 1,
            }
        }
    }
    assert!(hits > 1000, "{hits} pixels show a surface");
    assert!(agree * 100 >= hits * 99, "{agree} of {hits} points agree");
    assert!(edge * 50 <= hits, "{edge} pixels differ on silhouettes");
}

#[test]
fn a_point_behind_a_surface_is_hidden_and_one_in_front_is_not() {
    // A ball of radius 10 at the origin seen from the front (looking along +y in RAS): its
    // centre is hidden; a point 15 mm in front of it (−y) is not; one 15 mm behind it is.
    let ball = sphere([0.0, 0.0, 0.0], 10.0);
    let scene = Scene {
        centre: [0.0; 3],
        radius: 30.0,
    };
    let camera = Camera {
        yaw: 0.0,
        pitch: 0.0,
        zoom: 1.0,
        pan: [0.0; 2],
    };
    let projection = Projection::new(&camera, &scene, [100, 100]);
    // Away from the viewer is posterior (−y).
    assert_eq!(projection.depth_direction(), [0.0, -1.0, 0.0]);
    let meshes = [&ball];
    assert!(hidden_by(&meshes, &projection, [0.0, 0.0, 0.0], 1.0));
    assert!(!hidden_by(&meshes, &projection, [0.0, 15.0, 0.0], 1.0));
    assert!(hidden_by(&meshes, &projection, [0.0, -15.0, 0.0], 1.0));
}
