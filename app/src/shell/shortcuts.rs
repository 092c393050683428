//! Keyboard shortcuts: one table drives both the key handling and the help window (F1).

use super::{Command, Tab};
use crate::annotation::brush::Tool;
use crate::annotation::panel::EditCommand;
use crate::common::slice_geometry::Axis;
use crate::viewer::command::ViewCommand;
use eframe::egui::{self, Key, Modifiers};

/// Slices skipped by Page Up / Page Down.
const PAGE_SLICES: i64 = 10;
/// More slices than any volume has: Home and End step this far (the step is clamped).
const ALL_SLICES: i64 = i64::MAX / 4;

/// A key (with modifiers) and what it does.
pub struct Shortcut {
    /// Modifiers that must be held.
    pub modifiers: Modifiers,
    /// The key.
    pub key: Key,
    /// Whether it works while a text field has the keyboard (only for Ctrl and F-keys).
    pub global: bool,
    /// What it does, for the help window.
    pub description: &'static str,
    /// The command it sends.
    pub command: fn() -> Command,
}

const fn shortcut(key: Key, description: &'static str, command: fn() -> Command) -> Shortcut {
    Shortcut {
        modifiers: Modifiers::NONE,
        key,
        global: false,
        description,
        command,
    }
}

/// Every shortcut, in the order the help window lists them.
pub const SHORTCUTS: &[Shortcut] = &[
    shortcut(Key::ArrowUp, "Next slice in the active view", || {
        Command::StepSlice(1)
    }),
    shortcut(Key::ArrowDown, "Previous slice in the active view", || {
        Command::StepSlice(-1)
    }),
    shortcut(Key::PageUp, "10 slices forward", || {
        Command::StepSlice(PAGE_SLICES)
    }),
    shortcut(Key::PageDown, "10 slices back", || {
        Command::StepSlice(-PAGE_SLICES)
    }),
    shortcut(Key::Home, "First slice in the active view", || {
        Command::StepSlice(-ALL_SLICES)
    }),
    shortcut(Key::End, "Last slice in the active view", || {
        Command::StepSlice(ALL_SLICES)
    }),
    shortcut(Key::Plus, "Zoom in (the active view)", || Command::Zoom(1)),
    shortcut(Key::Equals, "Zoom in (= without Shift)", || Command::Zoom(1)),
    shortcut(Key::Minus, "Zoom out", || Command::Zoom(-1)),
    shortcut(Key::Num1, "Maximise the axial view (again: all views)", || {
        Command::View(ViewCommand::ToggleMaximise(Axis::Axial))
    }),
    shortcut(Key::Num2, "Maximise the coronal view", || {
        Command::View(ViewCommand::ToggleMaximise(Axis::Coronal))
    }),
    shortcut(Key::Num3, "Maximise the sagittal view", || {
        Command::View(ViewCommand::ToggleMaximise(Axis::Sagittal))
    }),
    shortcut(Key::Num4, "Maximise the 3D view", || {
        Command::View(ViewCommand::ToggleMaximise3d)
    }),
    shortcut(Key::Escape, "Show all views", || Command::ShowAllViews),
    shortcut(Key::O, "Overlays on / off", || Command::ToggleOverlays),
    shortcut(Key::C, "Next channel of a multi-channel scan", || {
        Command::NextChannel
    }),
    shortcut(Key::W, "Next window preset", || Command::CyclePreset),
    shortcut(Key::N, "Next case in the list", || Command::StepCase(1)),
    shortcut(Key::P, "Previous case in the list", || Command::StepCase(-1)),
    shortcut(Key::R, "Reset zoom and pan", || Command::ResetZoom),
    shortcut(Key::B, "Brush (again: navigate)", || {
        Command::Edit(EditCommand::ToggleTool(Tool::Brush))
    }),
    shortcut(Key::E, "Eraser (again: navigate)", || {
        Command::Edit(EditCommand::ToggleTool(Tool::Eraser))
    }),
    shortcut(Key::G, "Region growing: click a seed (again: navigate)", || {
        Command::Edit(EditCommand::ToggleTool(Tool::Grow))
    }),
    shortcut(Key::M, "Ruler: click two points (again: navigate)", || {
        Command::Edit(EditCommand::ToggleTool(Tool::Ruler))
    }),
    shortcut(Key::OpenBracket, "Smaller brush", || {
        Command::Edit(EditCommand::ResizeBrush(-1))
    }),
    shortcut(Key::CloseBracket, "Larger brush", || {
        Command::Edit(EditCommand::ResizeBrush(1))
    }),
    // Before Ctrl+Z: egui lets Ctrl+Z match with Shift held too, and the first match wins.
    // Undo and redo are not global: a text field being edited keeps its own undo.
    Shortcut {
        modifiers: Modifiers::COMMAND.plus(Modifiers::SHIFT),
        key: Key::Z,
        global: false,
        description: "Redo",
        command: || Command::Edit(EditCommand::Redo),
    },
    Shortcut {
        modifiers: Modifiers::COMMAND,
        key: Key::Z,
        global: false,
        description: "Undo",
        command: || Command::Edit(EditCommand::Undo),
    },
    Shortcut {
        modifiers: Modifiers::COMMAND,
        key: Key::Y,
        global: false,
        description: "Redo",
        command: || Command::Edit(EditCommand::Redo),
    },
    Shortcut {
        modifiers: Modifiers::COMMAND,
        key: Key::S,
        global: true,
        description: "Save the label (to labelsCorrected)",
        command: || Command::Edit(EditCommand::Save),
    },
    Shortcut {
        modifiers: Modifiers::COMMAND,
        key: Key::E,
        global: true,
        description: "Export the active view as PNG",
        command: || Command::PickExportPath,
    },
    Shortcut {
        modifiers: Modifiers::COMMAND,
        key: Key::O,
        global: true,
        description: "Open a task folder",
        command: || Command::PickTaskFolder,
    },
    Shortcut {
        modifiers: Modifiers::NONE,
        key: Key::F1,
        global: true,
        description: "Show / hide this help",
        command: || Command::ToggleHelp,
    },
    Shortcut {
        modifiers: Modifiers::NONE,
        key: Key::F2,
        global: true,
        description: "Side panel: Display tab",
        command: || Command::ShowTab(Tab::Display),
    },
    Shortcut {
        modifiers: Modifiers::NONE,
        key: Key::F3,
        global: true,
        description: "Side panel: Edit tab",
        command: || Command::ShowTab(Tab::Edit),
    },
    Shortcut {
        modifiers: Modifiers::NONE,
        key: Key::F4,
        global: true,
        description: "Side panel: Metrics tab",
        command: || Command::ShowTab(Tab::Metrics),
    },
    Shortcut {
        modifiers: Modifiers::NONE,
        key: Key::F5,
        global: true,
        description: "Side panel: Activations tab",
        command: || Command::ShowTab(Tab::Activations),
    },
    Shortcut {
        modifiers: Modifiers::NONE,
        key: Key::F6,
        global: true,
        description: "Side panel: Training tab",
        command: || Command::ShowTab(Tab::Training),
    },
];

/// Mouse actions, listed in the help window after the keys.
pub const MOUSE_ACTIONS: &[(&str, &str)] = &[
    ("Click", "Move the crosshair (all three views follow)"),
    ("Wheel", "Scroll slices"),
    ("Ctrl + wheel", "Zoom"),
    ("Drag (left or middle)", "Pan"),
    ("Right-drag", "Window (left/right) and level (up/down)"),
    ("Double-click", "Maximise the view, or show all again"),
    ("Drag with brush / eraser", "Paint / erase (middle-drag pans)"),
];

/// Consumes this frame's shortcut keys and returns their commands. Plain-key shortcuts are left
/// alone while a text field (filter, comment) has the keyboard.
pub fn read_shortcuts(ctx: &egui::Context) -> Vec<Command> {
    let typing = ctx.egui_wants_keyboard_input();
    ctx.input_mut(|input| {
        SHORTCUTS
            .iter()
            .filter(|s| s.global || !typing)
            .filter(|s| input.consume_key(s.modifiers, s.key))
            .map(|s| (s.command)())
            .collect()
    })
}

/// The human name of a shortcut's keys, e.g. "Ctrl+E".
pub fn key_text(shortcut: &Shortcut) -> String {
    let modifiers = egui::ModifierNames::NAMES.format(&shortcut.modifiers, false);
    if modifiers.is_empty() {
        shortcut.key.name().to_string()
    } else {
        format!("{modifiers}+{}", shortcut.key.name())
    }
}

/// The help window listing keys and mouse actions.
pub fn help_window(ctx: &egui::Context, open: &mut bool) {
    egui::Window::new("Keyboard shortcuts")
        .open(open)
        .resizable(false)
        .show(ctx, |ui| {
            egui::Grid::new("shortcut grid").striped(true).show(ui, |ui| {
                for shortcut in SHORTCUTS {
                    ui.monospace(key_text(shortcut));
                    ui.label(shortcut.description);
                    ui.end_row();
                }
                for (action, description) in MOUSE_ACTIONS {
                    ui.monospace(*action);
                    ui.label(*description);
                    ui.end_row();
                }
            });
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_two_shortcuts_share_a_key() {
        for (i, a) in SHORTCUTS.iter().enumerate() {
            for b in &SHORTCUTS[i + 1..] {
                assert!(
                    !(a.key == b.key && a.modifiers == b.modifiers),
                    "{} and {} share a key",
                    a.description,
                    b.description
                );
            }
        }
        assert_eq!(key_text(&SHORTCUTS[0]), "Up");
    }
}
