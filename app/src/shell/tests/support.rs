//! What the UI tests share: the real app on a phantom task written to a temporary folder, driven
//! through egui_kittest, and stepping frames until background work is done. Between frames a
//! test waits for what would wake the real window: a background thread's repaint request or a
//! repaint the app scheduled (a write due later), never a fixed sleep.

use crate::io::source::OpenRequest;
use crate::shell::Studio;
use eframe::egui::{self, vec2};
use egui_kittest::Harness;
use engine::data::{PhantomOptions, write_phantom_task};
use std::cell::RefCell;
use std::sync::mpsc;
use std::time::{Duration, Instant};

thread_local! {
    /// The repaint requests of this test's app (each test runs on its own thread): the delay
    /// each asks for.
    static WAKES: RefCell<Option<mpsc::Receiver<Duration>>> = const { RefCell::new(None) };
}

/// Sends every repaint request made on `ctx` that would wake a waiting window: those of other
/// threads, and those this thread schedules for later. What the UI thread asks for while drawing
/// (a spinner's next frame) is left out, so a test does not spin while work runs elsewhere.
fn observe_repaints(ctx: &egui::Context, sender: mpsc::Sender<Duration>) {
    let ui_thread = std::thread::current().id();
    ctx.set_repaint_observer(move |info| {
        if std::thread::current().id() != ui_thread || !info.delay.is_zero() {
            // A test that ended has dropped the receiver: nothing to wake.
            let _ = sender.send(info.delay);
        }
    });
}

/// Blocks until the app would repaint: a wake-up from another thread, or a repaint it
/// scheduled coming due; at the latest until `deadline`.
fn wait_for_wake(deadline: Instant) {
    WAKES.with(|wakes| {
        let wakes = wakes.borrow();
        let Some(receiver) = wakes.as_ref() else {
            return;
        };
        let mut due = deadline;
        loop {
            let now = Instant::now();
            if now >= due {
                return;
            }
            match receiver.recv_timeout(due - now) {
                Ok(delay) if delay.is_zero() => return,
                Ok(delay) => due = due.min(Instant::now() + delay),
                Err(_) => return,
            }
        }
    });
}

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
    let options = PhantomOptions {
        training_cases,
        test_cases,
        size,
        ..PhantomOptions::default()
    };
    open_phantom_task_with(&options, window)
}

/// [`open_phantom_task`] with every phantom option given (e.g. a multi-channel MRI task).
pub fn open_phantom_task_with(options: &PhantomOptions, window: [f32; 2]) -> anyhow::Result<Fixture> {
    let task = tempfile::tempdir()?;
    write_phantom_task(task.path(), options)?;
    // The waker repaints this context; the harness steps frames itself.
    let request = OpenRequest {
        path: Some(task.path().to_path_buf()),
        ..OpenRequest::default()
    };
    let (sender, receiver) = mpsc::channel();
    let studio_ctx = egui::Context::default();
    observe_repaints(&studio_ctx, sender.clone());
    let studio = Studio::new(&studio_ctx, None, request);
    let harness = Harness::builder()
        .with_size(vec2(window[0], window[1]))
        .build_ui_state(|ui, studio: &mut Studio| studio.frame_ui(ui), studio);
    // Some jobs wake the context they were started from, the harness's.
    observe_repaints(&harness.ctx, sender);
    WAKES.with(|wakes| *wakes.borrow_mut() = Some(receiver));
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

/// Steps a frame each time the app would wake until `done` holds, then three more so the
/// layout is final.
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
        wait_for_wake(deadline);
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

/// A two-case phantom task opened on the Edit tab.
pub fn open_edit_task() -> anyhow::Result<Fixture> {
    let mut fixture = open_phantom_task(2, 0, [32, 28, 12], [1500.0, 950.0])?;
    fixture.harness.state_mut().tab = crate::shell::Tab::Edit;
    settle(&mut fixture.harness)?;
    Ok(fixture)
}

/// The open case's label values (empty without one).
pub fn label(harness: &Harness<'static, Studio>) -> Vec<f32> {
    harness
        .state()
        .view
        .as_ref()
        .and_then(|v| v.case.ground_truth.as_ref())
        .map(|l| l.to_f32())
        .unwrap_or_default()
}

/// Presses or releases the primary mouse button at `pos`.
pub fn button(harness: &Harness<'static, Studio>, pos: egui::Pos2, pressed: bool) {
    harness.event(egui::Event::PointerButton {
        pos,
        button: egui::PointerButton::Primary,
        pressed,
        modifiers: egui::Modifiers::NONE,
    });
}
