//! Settings remembered between runs through eframe's storage, kept apart from runtime state.
//! Every field has a default, so files from older versions (or hand-edited ones) still load.

use crate::io::source::OpenRequest;
use crate::viewer::render::{LabelStyle, OverlaySettings, WindowPreset};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Key under which the settings are stored.
pub const SETTINGS_KEY: &str = "medvisionllama-studio/settings";

/// Most entries kept in the recent-files list.
pub const MAX_RECENT: usize = 10;

/// What the app remembers between runs.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Presets offered (and cycled by `W`), in order.
    pub window_presets: Vec<WindowPreset>,
    /// Overlay layers, style and opacity.
    pub overlays: OverlaySettings,
    /// Recently opened tasks and scans, newest first.
    pub recent: Vec<OpenRequest>,
    /// The last task folder or scan opened (the file dialogs start there).
    pub last_opened: Option<PathBuf>,
    /// Where the last PNG was exported.
    pub export_folder: Option<PathBuf>,
    /// The legend's label colours and opacities, per task (by its title: the folder or file
    /// path, or "Demo task").
    pub task_label_styles: BTreeMap<String, BTreeMap<u32, LabelStyle>>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            window_presets: WindowPreset::ALL.to_vec(),
            overlays: OverlaySettings::default(),
            recent: Vec::new(),
            last_opened: None,
            export_folder: None,
            task_label_styles: BTreeMap::new(),
        }
    }
}

impl Settings {
    /// Reads the settings from eframe's storage, falling back to defaults.
    pub fn load(storage: Option<&dyn eframe::Storage>) -> Self {
        storage
            .and_then(|s| eframe::get_value(s, SETTINGS_KEY))
            .unwrap_or_default()
    }

    /// Writes the settings into eframe's storage.
    pub fn save(&self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, SETTINGS_KEY, self);
    }

    /// Puts `request` first in the recent list (once) and remembers its path.
    pub fn remember_opened(&mut self, request: &OpenRequest) {
        self.recent.retain(|r| r != request);
        self.recent.insert(0, request.clone());
        self.recent.truncate(MAX_RECENT);
        if request.path.is_some() {
            self.last_opened.clone_from(&request.path);
        }
    }

    /// Shows the label colours remembered for `task` (none: the palette).
    pub fn open_task(&mut self, task: &str) {
        self.overlays.label_styles = self.task_label_styles.get(task).cloned().unwrap_or_default();
    }

    /// New overlay settings; their label colours are remembered for `task` when one is open.
    pub fn set_overlays(&mut self, overlays: OverlaySettings, task: Option<&str>) {
        if let Some(task) = task
            && overlays.label_styles != self.overlays.label_styles
        {
            if overlays.label_styles.is_empty() {
                self.task_label_styles.remove(task);
            } else {
                self.task_label_styles
                    .insert(task.to_string(), overlays.label_styles.clone());
            }
        }
        self.overlays = overlays;
    }

    /// The preset after `current` in the cycle (the first when `current` is none or not offered).
    pub fn next_preset(&self, current: Option<WindowPreset>) -> Option<WindowPreset> {
        let position = current.and_then(|c| self.window_presets.iter().position(|p| *p == c));
        match position {
            Some(i) => self
                .window_presets
                .get((i + 1) % self.window_presets.len())
                .copied(),
            None => self.window_presets.first().copied(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_list_is_newest_first_without_duplicates_and_bounded() {
        let mut settings = Settings::default();
        let request = |n: usize| OpenRequest {
            path: Some(format!("/data/task{n}").into()),
            ..OpenRequest::default()
        };
        for n in 0..=MAX_RECENT + 2 {
            settings.remember_opened(&request(n));
        }
        settings.remember_opened(&request(5));
        assert_eq!(settings.recent.len(), MAX_RECENT);
        assert_eq!(settings.recent[0], request(5));
        assert_eq!(settings.recent.iter().filter(|r| **r == request(5)).count(), 1);
        assert_eq!(settings.last_opened, request(5).path);
    }

    #[test]
    fn presets_cycle_and_missing_fields_take_defaults() -> anyhow::Result<()> {
        let settings: Settings = serde_json::from_str(r#"{"export_folder": "/tmp"}"#)?;
        assert_eq!(settings.window_presets, WindowPreset::ALL.to_vec());
        assert_eq!(settings.overlays, OverlaySettings::default());
        assert_eq!(settings.next_preset(None), Some(WindowPreset::SoftTissue));
        assert_eq!(
            settings.next_preset(Some(WindowPreset::SoftTissue)),
            Some(WindowPreset::Lung)
        );
        assert_eq!(
            settings.next_preset(Some(WindowPreset::Auto)),
            Some(WindowPreset::SoftTissue)
        );
        let text = serde_json::to_string(&settings)?;
        assert_eq!(serde_json::from_str::<Settings>(&text)?, settings);
        Ok(())
    }

    #[test]
    fn label_colours_are_remembered_per_task_and_survive_a_restart() -> anyhow::Result<()> {
        let mut settings = Settings::default();
        let red = LabelStyle {
            colour: [255, 0, 0],
            opacity: 0.5,
        };
        settings.open_task("/data/Task01");
        let mut overlays = settings.overlays.clone();
        overlays.label_styles.insert(2, red);
        settings.set_overlays(overlays, Some("/data/Task01"));
        assert_eq!(settings.overlays.label_colour(2), eframe::egui::Color32::RED);
        // Another task shows the palette, and its own changes stay its own.
        settings.open_task("Demo task");
        assert!(settings.overlays.label_styles.is_empty());
        assert_ne!(settings.overlays.label_colour(2), eframe::egui::Color32::RED);
        // A change of another setting while no task is open remembers nothing.
        let mut overlays = settings.overlays.clone();
        overlays.label_styles.insert(1, red);
        settings.set_overlays(overlays, None);
        assert!(!settings.task_label_styles.contains_key("Demo task"));
        // Through the storage format and back, then the first task again.
        let text = serde_json::to_string(&settings)?;
        let mut restored: Settings = serde_json::from_str(&text)?;
        restored.open_task("/data/Task01");
        assert_eq!(restored.overlays.label_styles.get(&2), Some(&red));
        assert_eq!(
            restored.overlays.label_opacity(2),
            restored.overlays.opacity * 0.5
        );
        // "Default label colours" forgets them for the task.
        let mut overlays = restored.overlays.clone();
        overlays.label_styles.clear();
        restored.set_overlays(overlays, Some("/data/Task01"));
        assert!(restored.task_label_styles.is_empty());
        Ok(())
    }
}
