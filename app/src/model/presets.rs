//! The model presets the training panel offers: the TOML files of `configs/`, built into the
//! binary so the app finds them wherever it is run from.

use engine::model::ModelConfig;
use engine::train::TrainingConfig;

/// One preset: its file name, what it is for, and its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preset {
    /// File stem in `configs/` (also the run folder's prefix).
    pub name: &'static str,
    /// One line for the picker.
    pub description: &'static str,
    text: &'static str,
}

/// Every preset, the CPU-sized ones first.
pub const PRESETS: [Preset; 5] = [
    Preset {
        name: "demo-cpu",
        description: "MedVisionLlama, tiny: trains on 2 CPU cores in minutes (random frozen LLM block)",
        text: include_str!("../../../configs/demo-cpu.toml"),
    },
    Preset {
        name: "demo-cpu-baseline",
        description: "ViT-Baseline of demo-cpu: the same ViT without VD1, LLM and VD2",
        text: include_str!("../../../configs/demo-cpu-baseline.toml"),
    },
    Preset {
        name: "official-code",
        description: "The official code's network around Llama-3.1-8B layer 31 (GPU; weights via llm.checkpoint)",
        text: include_str!("../../../configs/official-code.toml"),
    },
    Preset {
        name: "paper",
        description: "The paper's description: hybrid encoder, LoRA r8 on q and v (GPU)",
        text: include_str!("../../../configs/paper.toml"),
    },
    Preset {
        name: "vit-baseline",
        description: "ViT-Baseline of official-code (GPU)",
        text: include_str!("../../../configs/vit-baseline.toml"),
    },
];

impl Preset {
    /// The preset by name.
    pub fn named(name: &str) -> Option<Preset> {
        PRESETS.into_iter().find(|p| p.name == name)
    }

    /// The network and schedule it describes, parsed and validated by the engine as the CLI
    /// parses a preset file.
    pub fn configs(&self) -> Result<(ModelConfig, TrainingConfig), String> {
        let path = std::path::PathBuf::from(format!("configs/{}.toml", self.name));
        let model =
            ModelConfig::from_toml(self.text, &path).map_err(|e| format!("preset {}: {e}", self.name))?;
        let training =
            TrainingConfig::from_toml(self.text, &path).map_err(|e| format!("preset {}: {e}", self.name))?;
        Ok((model, training))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_parses_and_matches_its_file() {
        for preset in PRESETS {
            let (model, training) = preset.configs().expect("preset parses");
            let from_file = ModelConfig::from_file(
                &std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../configs")
                    .join(format!("{}.toml", preset.name)),
            )
            .expect("file parses");
            assert_eq!(model, from_file, "{}", preset.name);
            assert!(training.epochs > 0);
        }
        assert_eq!(Preset::named("demo-cpu").map(|p| p.name), Some("demo-cpu"));
        assert!(Preset::named("nope").is_none());
    }
}
