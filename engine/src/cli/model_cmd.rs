//! `mvl model`, `mvl predict` and `mvl activations`.

use super::dicom_cmd::ScanArg;
use super::output::Output;
use crate::checkpoint::{self, PreprocessingSpec, fresh_meta, load_checkpoint, save_checkpoint};
use crate::device::{BackendJob, DeviceKind, Precision, choose_device, dispatch, guard};
use crate::infer::{self, Colormap, Reduction, SliceAxis, write_map_png};
use crate::model::EngineBackend;
use crate::model::{MedVisionLlama, ModelConfig, model_stats};
use crate::volume::{DataType, WriteOptions, read_scan, write_label_like, write_nifti};
use crate::weights::{RANDOM_WEIGHTS, read_block_config};
use anyhow::Context;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Reads a preset and applies `--llm DIR --layer L`, adopting the checkpoint's widths.
pub fn load_config(path: &Path, llm: Option<PathBuf>, layer: Option<usize>) -> anyhow::Result<ModelConfig> {
    let mut config = ModelConfig::from_file(path)?;
    if let Some(dir) = llm {
        config.llm.checkpoint = Some(dir);
    }
    if let Some(layer) = layer {
        config.llm.layer = layer;
    }
    if config.has_llm()
        && let Some(dir) = config.llm.checkpoint.clone()
    {
        let hf = read_block_config(&dir, config.llm.architecture)?;
        config.llm.hidden = hf.hidden;
        config.llm.heads = hf.heads;
        config.llm.kv_heads = hf.kv_heads;
        config.llm.intermediate = hf.intermediate;
        match hf.architecture {
            crate::model::LlmArchitecture::Llama => config.llm.rms_eps = hf.eps,
            _ => config.llm.layer_norm_eps = hf.eps,
        }
        if config.llm.layer >= hf.layers {
            anyhow::bail!(
                "{}: layer {} asked for, the model has {} layers",
                dir.display(),
                config.llm.layer,
                hf.layers
            );
        }
    }
    Ok(config)
}

/// The "LLM weights: …" line every report carries.
pub fn llm_weights_label(config: &ModelConfig) -> String {
    if let Some(label) = config.no_frozen_block_label() {
        return label.into();
    }
    match &config.llm.checkpoint {
        Some(dir) => format!("{} layer {}", dir.display(), config.llm.layer),
        None => RANDOM_WEIGHTS.into(),
    }
}

fn device_for(requested: Option<DeviceKind>, output: &mut Output) -> anyhow::Result<DeviceKind> {
    let choice = choose_device(requested).map_err(anyhow::Error::msg)?;
    output.line(format!("device: {}", choice.reason));
    Ok(choice.kind)
}

/// `mvl model`.
pub fn model(
    output: &mut Output,
    config_path: &Path,
    llm: Option<PathBuf>,
    layer: Option<usize>,
    json: bool,
    init_checkpoint: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let config = load_config(config_path, llm, layer)?;
    let stats = model_stats(&config);
    let weights_label = llm_weights_label(&config);
    if let Some(dir) = &init_checkpoint {
        let weights = checkpoint::llm_weights_for(&config)?;
        let device = Default::default();
        let network = MedVisionLlama::<burn::backend::Flex>::new(&config, weights.clone(), &device);
        // Written whole or not at all (the folder may hold an older checkpoint).
        crate::atomic::replace_folder(
            dir,
            |partial| save_checkpoint(partial, &network, &config, &fresh_meta(&config, weights.as_ref())),
            |path, e| checkpoint::CheckpointError::File {
                path: path.to_path_buf(),
                reason: e.to_string(),
            },
        )?;
    }
    if json {
        output.json(&serde_json::json!({
            "name": config.name,
            "kind": config.kind,
            "trainable_params": stats.trainable_params,
            "frozen_params": stats.frozen_params,
            "tokens": stats.tokens,
            "flops_per_sample": stats.flops_per_sample,
            "llm_flops_per_sample": stats.llm_flops_per_sample,
            "llm_weights": weights_label,
            "config": config,
        }))?;
        return Ok(ExitCode::SUCCESS);
    }
    let grid = config.token_grid();
    output.line(format!("model            {} ({:?})", config.name, config.kind));
    output.line(format!(
        "input            {}×{}×{} voxels, {} channel(s); {}³ patches → {}×{}×{} = {} tokens",
        config.image_size[0],
        config.image_size[1],
        config.image_size[2],
        config.in_channels,
        config.patch_size,
        grid[0],
        grid[1],
        grid[2],
        stats.tokens
    ));
    output.line(format!(
        "patch embedding  Linear({} → {})",
        config.patch_features(),
        config.embed_dim
    ));
    output.line(format!("position embed   {:?}", config.pos_embed));
    output.line(format!(
        "ViT blocks       {} before VD1, {} after VD2 (width {}, {} heads, MLP {}, dropout {})",
        config.encoder_depth,
        config.decoder_depth,
        config.embed_dim,
        config.num_heads,
        config.mlp_dim,
        config.dropout
    ));
    if config.has_llm() {
        let llm = &config.llm;
        output.line(format!(
            "VD1 / VD2        {:?} {} ↔ {} (rank {}, alpha {})",
            config.mapper, config.embed_dim, llm.hidden, config.mapper_rank, config.mapper_alpha
        ));
        output.line(format!(
            "LLM block        hidden {}, {} heads / {} KV heads, SwiGLU {}, no RoPE, no mask{}; LoRA on {:?}; residual {}",
            llm.hidden,
            llm.heads,
            llm.kv_heads,
            llm.intermediate,
            if llm.final_norm { ", final RMSNorm" } else { "" },
            llm.lora_targets,
            config.llm_residual
        ));
    }
    output.line(format!(
        "head             Linear({} → {}) per token, un-patchify, {:?}",
        config.embed_dim,
        config.patch_size.pow(3) * config.out_channels,
        config.output
    ));
    output.line(format!("LLM weights      {weights_label}"));
    output.line(format!("trainable        {} parameters", stats.trainable_params));
    output.line(format!("frozen           {} parameters", stats.frozen_params));
    output.line(format!(
        "FLOPs / sample   {:.4} GFLOP forward ({:.4} GFLOP in the LLM block)",
        stats.flops_per_sample / 1e9,
        stats.llm_flops_per_sample / 1e9
    ));
    if let Some(dir) = init_checkpoint {
        output.line(format!("wrote an untrained checkpoint to {}", dir.display()));
    }
    Ok(ExitCode::SUCCESS)
}

/// Options of `mvl predict`.
pub struct PredictJob {
    /// Checkpoint folder.
    pub checkpoint: PathBuf,
    /// The scan.
    pub input: ScanArg,
    /// Output label file.
    pub out: PathBuf,
    /// Also write the probabilities here.
    pub probabilities: Option<PathBuf>,
    /// Predict several times (mirroring or Monte-Carlo dropout) and write the uncertainty map here.
    pub uncertainty: Option<(PathBuf, infer::UncertaintyMethod)>,
    /// LLM folder override.
    pub llm: Option<PathBuf>,
    /// Precision of the frozen Llama block.
    pub dtype: Precision,
}

/// Reads a checkpoint and puts its frozen block in `dtype`.
fn load_in<B: EngineBackend>(
    checkpoint: &Path,
    llm: Option<&Path>,
    dtype: Precision,
    device: &B::Device,
) -> anyhow::Result<checkpoint::LoadedCheckpoint<B>> {
    let mut loaded = load_checkpoint::<B>(checkpoint, llm, device)?;
    loaded.model = dtype.apply(loaded.model, device).map_err(anyhow::Error::msg)?;
    Ok(loaded)
}

impl BackendJob for PredictJob {
    type Output = anyhow::Result<Vec<String>>;
    fn run<B: EngineBackend>(self, device: B::Device) -> Self::Output {
        let loaded = load_in::<B>(&self.checkpoint, self.llm.as_deref(), self.dtype, &device)?;
        let image = read_scan(&self.input.path, self.input.series.as_deref())?;
        let spec = prediction_spec(&loaded.meta.preprocessing, &loaded.config, &image.volume);
        let started = std::time::Instant::now();
        let method = self.uncertainty.as_ref().map(|(_, method)| *method);
        if let Some(method) = method {
            method
                .check(&loaded.config)
                .with_context(|| format!("checkpoint {}", self.checkpoint.display()))?;
        }
        let (prediction, uncertain) = infer::predict_maybe_mirrored(
            &loaded.model,
            &loaded.config,
            &spec,
            &image.volume,
            method,
            &device,
        )?;
        let seconds = started.elapsed().as_secs_f64();
        // The app, `mvl metrics` and the worker read the scheme beside a prediction to score it
        // (a one-channel sigmoid model predicts the merged foreground).
        let folder = match self.out.parent() {
            Some(folder) if !folder.as_os_str().is_empty() => folder,
            _ => Path::new("."),
        };
        std::fs::create_dir_all(folder)
            .with_context(|| format!("creating the folder {}", folder.display()))?;
        write_label_like(&self.out, &prediction.label, &image.header)?;
        infer::label_scheme(&loaded.config)
            .save_beside(folder)
            .with_context(|| format!("recording the label scheme beside {}", self.out.display()))?;
        if let Some(path) = &self.probabilities {
            write_nifti(
                path,
                &prediction.probabilities,
                Some(&image.header),
                WriteOptions::new(DataType::F32),
            )?;
        }
        let voxel_ml = image.volume.spacing_mm().iter().product::<f64>() / 1000.0;
        let foreground = prediction.label.voxels().iter().filter(|v| **v > 0.0).count();
        let mut lines = vec![
            format!("LLM weights: {}", loaded.meta.llm_weights),
            format!(
                "predicted {} in {seconds:.2} s: {foreground} foreground voxels ({:.1} mL); wrote {}",
                self.input.path.display(),
                foreground as f64 * voxel_ml,
                self.out.display()
            ),
        ];
        if let (Some((path, method)), Some((map, score))) = (self.uncertainty, uncertain) {
            if let Some(maps) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(maps)
                    .with_context(|| format!("creating the folder {}", maps.display()))?;
            }
            write_nifti(&path, &map, Some(&image.header), WriteOptions::new(DataType::F32))?;
            let case = crate::data::case_id(&self.input.path);
            infer::UncertaintyScores::record(folder, &method.describe(), &case, score)
                .map_err(anyhow::Error::msg)?;
            lines.push(format!(
                "uncertainty score {score:.4} ({}); wrote {} and {}",
                method.describe(),
                path.display(),
                infer::UncertaintyScores::path(folder).display()
            ));
        }
        Ok(lines)
    }
}

fn prediction_spec(
    recorded: &Option<PreprocessingSpec>,
    config: &ModelConfig,
    image: &crate::volume::Volume,
) -> PreprocessingSpec {
    recorded
        .clone()
        .unwrap_or_else(|| infer::default_spec(config, image))
}

/// `mvl predict`.
pub fn predict(output: &mut Output, job: PredictJob, device: Option<DeviceKind>) -> anyhow::Result<ExitCode> {
    let kind = device_for(device, output)?;
    for line in guard(kind, || dispatch(kind, job))?? {
        output.line(line);
    }
    Ok(ExitCode::SUCCESS)
}

/// Options of `mvl activations`.
pub struct ActivationOptions {
    /// Checkpoint folder.
    pub checkpoint: PathBuf,
    /// Scan.
    pub input: PathBuf,
    /// Output folder.
    pub out: PathBuf,
    /// "axial:40" style slice for the PNGs.
    pub slice: Option<String>,
    /// ViT block for the attention map.
    pub block: usize,
    /// Head for the attention map.
    pub head: usize,
    /// Channel reduction.
    pub reduction: Reduction,
    /// Colour map of the PNGs.
    pub colormap: Colormap,
    /// LLM folder override.
    pub llm: Option<PathBuf>,
    /// Precision of the frozen Llama block.
    pub dtype: Precision,
}

struct ActivationsJob(ActivationOptions);

impl BackendJob for ActivationsJob {
    type Output = anyhow::Result<Vec<String>>;
    fn run<B: EngineBackend>(self, device: B::Device) -> Self::Output {
        let options = self.0;
        let (axis, index) = parse_slice(options.slice.as_deref())?;
        let loaded = load_in::<B>(
            &options.checkpoint,
            options.llm.as_deref(),
            options.dtype,
            &device,
        )?;
        let image = read_scan(&options.input, None)?;
        let spec = prediction_spec(&loaded.meta.preprocessing, &loaded.config, &image.volume);
        let maps = infer::activation_maps(
            &loaded.model,
            &loaded.config,
            &spec,
            &image.volume,
            (options.block, options.head),
            options.reduction,
            &device,
        )?;
        std::fs::create_dir_all(&options.out)
            .with_context(|| format!("creating {}", options.out.display()))?;
        let mut lines = vec![format!("LLM weights: {}", loaded.meta.llm_weights)];
        let mut index_json = Vec::new();
        for map in &maps {
            let nifti = options.out.join(format!("{}.nii.gz", map.stem));
            let png = options.out.join(format!("{}.png", map.stem));
            write_nifti(
                &nifti,
                &map.volume,
                Some(&image.header),
                WriteOptions::new(DataType::F32),
            )?;
            let (low, high) = write_map_png(&png, &image.volume, &map.volume, axis, index, options.colormap)
                .with_context(|| format!("writing {}", png.display()))?;
            lines.push(format!(
                "{:<18} {} and {} (colour bar {low:.4} … {high:.4})",
                map.name,
                nifti.display(),
                png.display()
            ));
            index_json.push(serde_json::json!({
                "name": map.name, "nifti": nifti, "png": png, "colour_bar_min": low, "colour_bar_max": high,
            }));
        }
        let summary = serde_json::json!({
            "input": options.input, "checkpoint": options.checkpoint, "llm_weights": loaded.meta.llm_weights,
            "reduction": options.reduction, "colormap": options.colormap, "maps": index_json,
        });
        let path = options.out.join("activations.json");
        crate::volume::write_atomically(&path, |w| {
            std::io::Write::write_all(w, summary.to_string().as_bytes())
        })
        .with_context(|| format!("writing {}", path.display()))?;
        Ok(lines)
    }
}

fn parse_slice(text: Option<&str>) -> anyhow::Result<(SliceAxis, Option<usize>)> {
    let Some(text) = text else {
        return Ok((SliceAxis::Axial, None));
    };
    let (axis, index) = text.split_once(':').map_or((text, None), |(a, i)| (a, Some(i)));
    let axis = SliceAxis::parse(axis)
        .with_context(|| format!("--slice {text:?}: the axis is axial, coronal or sagittal"))?;
    let index = index
        .map(|i| {
            i.parse::<usize>()
                .with_context(|| format!("--slice {text:?}: the index must be a whole number"))
        })
        .transpose()?;
    Ok((axis, index))
}

/// `mvl activations`.
pub fn activations(
    output: &mut Output,
    options: ActivationOptions,
    device: Option<DeviceKind>,
) -> anyhow::Result<ExitCode> {
    let kind = device_for(device, output)?;
    for line in guard(kind, || dispatch(kind, ActivationsJob(options)))?? {
        output.line(line);
    }
    Ok(ExitCode::SUCCESS)
}
