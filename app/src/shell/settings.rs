//! Settings remembered between runs through eframe's storage, kept apart from runtime state.
//! Every field has a default, so files from older versions (or hand-edited ones) still load.

use crate::io::source::OpenRequest;
use crate::viewer::render::{OverlaySettings, WindowPreset};
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
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            window_presets: WindowPreset::ALL.to_vec(),
            overlays: OverlaySettings::default(),
            recent: Vec::new(),
            last_opened: None,
            export_folder: None,
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
}
