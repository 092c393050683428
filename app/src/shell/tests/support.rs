//! What the UI tests share: the real app on a phantom task written to a temporary folder, driven
//! through egui_kittest, and stepping frames until background work is done.

use crate::io::source::OpenRequest;
use crate::shell::Studio;
use eframe::egui::{self, vec2};
use egui_kittest::Harness;
use engine::data::{PhantomOptions, write_phantom_task};
use std::time::{Duration, Instant};

/// The app on a phantom task; the folder lives as long as the fixture.
pub struct Fixture {
    /// The app in a kittest harness.
    pub harness: Harness<'static, Studio>,
    /// The task folder.
    pub task: tempfile::TempDir,
}

/// Writes a phantom task with `training_cases` and `test_cases` of `size` voxels, opens it in a
/// `window`-sized harness, and waits until its first case is shown.
pub fn open_phantom_task(
    training_cases: usize,
    test_cases: usize,
    size: [usize; 3],
    window: [f32; 2],
) -> anyhow::Result<Fixture> {
    let task = tempfile::tempdir()?;
    let options = PhantomOptions {
        training_cases,
        test_cases,
        size,
        ..PhantomOptions::default()
    };
    write_phantom_task(task.path(), &options)?;
    // The waker repaints this context; the harness steps frames itself.
    let request = OpenRequest {
        path: Some(task.path().to_path_buf()),
        ..OpenRequest::default()
    };
    let studio = Studio::new(&egui::Context::default(), None, request);
    let harness = Harness::builder()
        .with_size(vec2(window[0], window[1]))
        .build_ui_state(|ui, studio: &mut Studio| studio.frame_ui(ui), studio);
    let mut fixture = Fixture { harness, task };
    wait_until(&mut fixture.harness, timeout(), "the task to open", |s| {
        !s.is_busy() && s.view.is_some()
    })?;
    Ok(fixture)
}

/// Longest a load may take before a test fails.
fn timeout() -> Duration {
    Duration::from_secs(60)
}

/// Steps frames until `done` holds, then three more so the layout is final.
pub fn wait_until(
    harness: &mut Harness<'static, Studio>,
    limit: Duration,
    what: &str,
    done: impl Fn(&Studio) -> bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    harness.step();
    while !done(harness.state()) {
        anyhow::ensure!(Instant::now() < deadline, "waited {limit:?} for {what}");
        std::thread::sleep(Duration::from_millis(5));
        harness.step();
    }
    frames(harness, 3);
    Ok(())
}

/// Steps frames until nothing is loading, computing or writing.
pub fn settle(harness: &mut Harness<'static, Studio>) -> anyhow::Result<()> {
    wait_until(harness, timeout(), "loading and writing", |s| !s.is_busy())
}

/// Steps `count` frames.
pub fn frames(harness: &mut Harness<'static, Studio>, count: usize) {
    for _ in 0..count {
        harness.step();
    }
}
