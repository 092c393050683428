//! Tests of the activations panel's state.

use super::*;
use engine::volume::Affine;

/// The heat map once its reorientation has finished.
fn heat_now(panel: &mut ActivationsPanel, slot: usize, shape: [usize; 3]) -> Option<Heat> {
    let _ = panel.heat(slot, shape);
    panel.finish_preparing();
    panel.heat(slot, shape)
}

fn map(stem: &str, shape: [usize; 3], scale: f32) -> ActivationMap {
    let len = shape.iter().product::<usize>();
    ActivationMap {
        name: stem.to_uppercase(),
        stem: stem.into(),
        volume: Volume::new(
            shape,
            1,
            (0..len).map(|i| i as f32 * scale).collect(),
            Affine::identity(),
        )
        .expect("volume"),
    }
}

#[test]
fn captures_fill_slots_in_order_and_heat_uses_the_layer_range() {
    let mut panel = ActivationsPanel {
        models: [Some("a/best".into()), Some("b/best".into())],
        ..ActivationsPanel::default()
    };
    let first = panel.start_capture(Path::new("scan.nii.gz"));
    assert_eq!(first.map(|f| f.0), Some(PathBuf::from("a/best")));
    assert!(panel.next_capture().is_none(), "one capture in flight at a time");
    let shape = [2, 3, 4];
    panel.received(
        Path::new("scan.nii.gz"),
        Arc::new(vec![map("llm", shape, 1.0), map("ve", shape, 2.0)]),
    );
    let second = panel.next_capture();
    assert_eq!(second.map(|f| f.0), Some(PathBuf::from("b/best")));
    panel.received(Path::new("scan.nii.gz"), Arc::new(vec![map("llm", shape, 3.0)]));
    assert!(!panel.is_capturing());

    let heat = heat_now(&mut panel, 0, shape).expect("slot A has the LLM map");
    assert_eq!((heat.low, heat.high), (0.0, 23.0));
    let heat = heat_now(&mut panel, 1, shape).expect("slot B has the LLM map");
    assert_eq!((heat.low, heat.high), (0.0, 69.0));
    panel.layer = "ve".into();
    assert_eq!(heat_now(&mut panel, 0, shape).map(|h| h.high), Some(46.0));
    assert!(heat_now(&mut panel, 1, shape).is_none(), "slot B has no V_E map");
    assert!(
        heat_now(&mut panel, 0, [4, 3, 2]).is_none(),
        "another grid is not drawn"
    );
    panel.visible = false;
    assert!(heat_now(&mut panel, 0, shape).is_none());
    assert_eq!(panel.model_name(0), "a");
}

#[test]
fn maps_of_a_case_left_behind_are_not_kept() {
    let mut panel = ActivationsPanel {
        models: [Some("a/best".into()), Some("b/best".into())],
        ..ActivationsPanel::default()
    };
    assert!(panel.start_capture(Path::new("case_a.nii")).is_some());
    panel.clear(); // the user opened another case while A's capture ran
    panel.received(
        Path::new("case_a.nii"),
        Arc::new(vec![map("llm", [1, 1, 1], 1.0)]),
    );
    assert!(panel.captured.iter().all(Option::is_none));
    assert!(
        panel.next_capture().is_none(),
        "model B is not captured on the old case"
    );
}

#[test]
fn a_failed_capture_drops_the_rest() {
    let mut panel = ActivationsPanel {
        models: [Some("a/best".into()), Some("b/best".into())],
        ..ActivationsPanel::default()
    };
    assert!(panel.start_capture(Path::new("s.nii")).is_some());
    panel.failed("out of memory".into());
    assert!(!panel.is_capturing() && panel.next_capture().is_none());
    assert_eq!(panel.error.as_deref(), Some("out of memory"));
}
