//! The training loop.

use super::samples::{Sample, augment, batch_tensors, load_samples};
use super::selection::select_cases;
use super::{TrainError, TrainEvent, TrainingConfig, segmentation_loss};
use crate::checkpoint::{CheckpointMeta, PreprocessingSpec, llm_weights_for, save_checkpoint};
use crate::data::{self, PreprocessOptions, PreprocessedTask, SplitOptions, Splits};
use crate::model::{MedVisionLlama, ModelConfig, OutputKind};
use crate::rng::Rng;
use crate::volume::write_atomically;
use burn::module::{AutodiffModule, Module};
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::record::{BinBytesRecorder, FullPrecisionSettings, Recorder};
use burn::tensor::{ElementConversion, backend::AutodiffBackend};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// Which training cases of the fold are used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Subset {
    /// All of the fold's training cases.
    All,
    /// A fraction (few-shot), nested as in splits.json.
    Fraction(f64),
    /// A number of cases (few-shot).
    Cases(usize),
    /// Exactly these cases, which may be any training cases of the task (e.g. the ones whose
    /// labels a user corrected); validation is the fold's validation cases not among them.
    Ids(Vec<String>),
}

/// What to train.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// The network.
    pub model: ModelConfig,
    /// The schedule.
    pub training: TrainingConfig,
    /// The MSD task folder.
    pub data: PathBuf,
    /// Cross-validation fold.
    pub fold: usize,
    /// Which of its training cases.
    pub subset: Subset,
    /// Run folder.
    pub out: PathBuf,
    /// Continue from `out/last` if present.
    pub resume: bool,
    /// Start from this checkpoint's parameters (fine-tuning) instead of a fresh model.
    pub init_from: Option<PathBuf>,
    /// Case id → label file used instead of the one dataset.json names (the user's corrected
    /// labels, see [`data::corrected_labels`]). Every id must be a training case of the task.
    pub label_overrides: BTreeMap<String, PathBuf>,
}

/// `run.json`: what a run was trained on, for `mvl eval`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunInfo {
    /// Task folder.
    pub task: PathBuf,
    /// Fold.
    pub fold: usize,
    /// Training subset.
    pub subset: Subset,
    /// Training ids used.
    pub train: Vec<String>,
    /// Validation ids.
    pub val: Vec<String>,
    /// Held-out test ids.
    pub test: Vec<String>,
    /// Model config.
    pub model: ModelConfig,
    /// Schedule.
    pub training: TrainingConfig,
    /// Labels used instead of dataset.json's (case id → file); absent in older runs.
    #[serde(default)]
    pub label_overrides: BTreeMap<String, PathBuf>,
}

/// One epoch in `history.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// Epoch (1-based).
    pub epoch: usize,
    /// Mean training loss.
    pub train_loss: f64,
    /// Mean validation Dice.
    pub val_dice: f64,
    /// Seconds.
    pub seconds: f64,
}

/// What `train` returns.
#[derive(Debug, Clone, Serialize)]
pub struct TrainSummary {
    /// Best validation Dice.
    pub best_val_dice: f64,
    /// Epochs completed.
    pub epochs_completed: usize,
    /// Whether a stop request ended it early.
    pub stopped: bool,
    /// Per-epoch history.
    pub history: Vec<EpochRecord>,
}

#[derive(Serialize, Deserialize)]
struct LastState {
    epochs_completed: usize,
    best_val_dice: f64,
    history: Vec<EpochRecord>,
}

fn invalid(message: impl Into<String>) -> TrainError {
    TrainError::Invalid(message.into())
}

fn file_error(path: &Path, reason: impl ToString) -> TrainError {
    TrainError::File {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// The preprocessing cache of a task for this model: beside the task, shared by its runs.
pub(crate) fn preprocess_cache(options: &TrainOptions) -> PathBuf {
    let [x, y, z] = options.model.image_size;
    options
        .data
        .join(".mvl")
        .join(format!("preprocessed-{x}x{y}x{z}-c{}", options.model.in_channels))
}

/// Preprocesses the task for this model (cached beside the task) with the label overrides in
/// place, and settles the splits. The cache fingerprints each case's sources, so a case whose
/// label is overridden (or no longer is) is preprocessed again.
fn prepare_data(options: &TrainOptions) -> Result<(PreprocessedTask, Splits), TrainError> {
    let mut task = data::open_task(&options.data)?;
    data::apply_label_overrides(&mut task, &options.label_overrides)?;
    let cache = preprocess_cache(options);
    let channels: Vec<usize> = (0..options.model.in_channels).collect();
    data::preprocess_task(
        &task,
        &cache,
        &PreprocessOptions {
            size: options.model.image_size,
            channels: Some(channels),
        },
    )?;
    let preprocessed = PreprocessedTask::open(&cache)?;
    let run_splits = options.out.join(data::SPLITS_FILE);
    let task_splits = options.data.join(data::SPLITS_FILE);
    let splits = if run_splits.is_file() {
        Splits::load(&run_splits)?
    } else if task_splits.is_file() {
        Splits::load(&task_splits)?
    } else {
        let ids: Vec<String> = task.training.iter().map(|c| c.id.clone()).collect();
        let splits = data::make_splits(
            &ids,
            &SplitOptions {
                seed: options.training.seed,
                ..SplitOptions::default()
            },
        )?;
        splits.save(&task_splits)?;
        splits
    };
    Ok((preprocessed, splits))
}

/// Dice of thresholded (or argmax) predictions against the label on the model grid; foreground
/// classes averaged. Both empty counts as 1 (nothing to find, nothing found).
fn validation_dice<B: AutodiffBackend>(
    model: &MedVisionLlama<B>,
    samples: &[Sample],
    config: &ModelConfig,
    device: &B::Device,
) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let inner = model.valid();
    let mut total = 0.0;
    for sample in samples {
        let (input, _) =
            batch_tensors::<B::InnerBackend>(&[(sample.image.clone(), sample.label.clone())], config, device);
        let probabilities = inner.probabilities(inner.forward(input));
        let values = probabilities.into_data().to_vec::<f32>().unwrap_or_default();
        let len = sample.label.voxels().len();
        let classes: Vec<u32> = match config.output {
            OutputKind::Sigmoid if config.out_channels == 1 => vec![0],
            _ => (1..config.out_channels as u32).collect(),
        };
        let mut dice_sum = 0.0;
        for class in &classes {
            let (mut both, mut predicted, mut truth) = (0usize, 0usize, 0usize);
            for i in 0..len {
                let label = sample.label.voxels()[i].round() as u32;
                let (p, t) = match config.output {
                    OutputKind::Sigmoid if config.out_channels == 1 => (values[i] > 0.5, label > 0),
                    OutputKind::Sigmoid => (values[(*class as usize - 1) * len + i] > 0.5, label == *class),
                    OutputKind::Softmax => {
                        let best = (0..config.out_channels)
                            .max_by(|a, b| values[a * len + i].total_cmp(&values[b * len + i]))
                            .unwrap_or(0);
                        (best as u32 == *class, label == *class)
                    }
                };
                both += usize::from(p && t);
                predicted += usize::from(p);
                truth += usize::from(t);
            }
            dice_sum += if predicted + truth == 0 {
                1.0
            } else {
                2.0 * both as f64 / (predicted + truth) as f64
            };
        }
        total += dice_sum / classes.len().max(1) as f64;
    }
    total / samples.len() as f64
}

/// Writes a folder whole: into `NAME.partial`, then swapped in by renames, so a crash leaves
/// the previous folder (or, between the renames, `NAME.old`) intact.
fn replace_folder(
    target: &Path,
    write: impl FnOnce(&Path) -> Result<(), TrainError>,
) -> Result<(), TrainError> {
    let partial = target.with_extension("partial");
    let old = target.with_extension("old");
    let _ = std::fs::remove_dir_all(&partial);
    std::fs::create_dir_all(&partial).map_err(|e| file_error(&partial, e))?;
    write(&partial)?;
    if target.exists() {
        let _ = std::fs::remove_dir_all(&old);
        std::fs::rename(target, &old).map_err(|e| file_error(target, e))?;
    }
    std::fs::rename(&partial, target).map_err(|e| file_error(target, e))?;
    let _ = std::fs::remove_dir_all(&old);
    Ok(())
}

fn write_bytes(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    write_atomically(path, |w| std::io::Write::write_all(w, bytes)).map_err(|e| file_error(path, e))
}

/// Trains per `options`, reporting through `on_event`; `stop` ends it after the current step with
/// a usable `last/` checkpoint.
pub fn train<B: AutodiffBackend>(
    options: &TrainOptions,
    device: &B::Device,
    stop: &AtomicBool,
    on_event: &mut dyn FnMut(TrainEvent),
) -> Result<TrainSummary, TrainError> {
    options.model.validate().map_err(|e| invalid(e.to_string()))?;
    if options.training.batch_size == 0 || options.training.epochs == 0 {
        return Err(invalid("batch_size and epochs must be at least 1"));
    }
    std::fs::create_dir_all(&options.out).map_err(|e| file_error(&options.out, e))?;
    let (preprocessed, splits) = prepare_data(options)?;
    splits.save(&options.out.join(data::SPLITS_FILE))?;
    let task_training_ids: Vec<String> = preprocessed
        .cases
        .iter()
        .filter(|c| c.split == "training")
        .map(|c| c.id.clone())
        .collect();
    let selection = select_cases(
        &splits,
        options.fold,
        &options.subset,
        options.training.seed,
        &task_training_ids,
    )?;
    let (train_ids, val_ids) = (selection.train, selection.val);
    let train_samples = load_samples(&preprocessed, &train_ids).map_err(invalid)?;
    let val_samples = load_samples(&preprocessed, &val_ids).map_err(invalid)?;
    let config = &options.model;
    let info = RunInfo {
        task: options.data.clone(),
        fold: options.fold,
        subset: options.subset.clone(),
        train: train_ids.clone(),
        val: val_ids,
        test: splits.test.clone(),
        model: config.clone(),
        training: options.training.clone(),
        label_overrides: options.label_overrides.clone(),
    };
    write_bytes(
        &options.out.join("run.json"),
        &serde_json::to_vec_pretty(&info).map_err(|e| invalid(e.to_string()))?,
    )?;
    let weights = llm_weights_for(config).map_err(crate::checkpoint::CheckpointError::from)?;
    let llm_source = weights
        .as_ref()
        .map_or_else(|| "none (ViT-Baseline)".to_string(), |w| w.source.clone());
    let mut model = MedVisionLlama::<B>::new(config, weights, device);
    if let Some(init) = &options.init_from {
        let loaded = crate::checkpoint::load_checkpoint::<B>(init, config.llm.checkpoint.as_deref(), device)?;
        model = loaded.model;
    }
    let mut optimizer = AdamConfig::new().init::<B, MedVisionLlama<B>>();
    let recorder = BinBytesRecorder::<FullPrecisionSettings>::default();
    let last_dir = options.out.join("last");
    let mut state = LastState {
        epochs_completed: 0,
        best_val_dice: f64::NEG_INFINITY,
        history: Vec::new(),
    };
    if options.resume {
        let dir = if last_dir.is_dir() {
            last_dir.clone()
        } else {
            last_dir.with_extension("old")
        };
        if dir.join("state.json").is_file() {
            let read = |name: &str| std::fs::read(dir.join(name)).map_err(|e| file_error(&dir.join(name), e));
            state = serde_json::from_slice(&read("state.json")?)
                .map_err(|e| file_error(&dir.join("state.json"), e))?;
            let model_record = recorder
                .load(read("model.bin")?, device)
                .map_err(|e| file_error(&dir.join("model.bin"), e))?;
            model = model.load_record(model_record);
            let optimizer_record = recorder
                .load(read("optimizer.bin")?, device)
                .map_err(|e| file_error(&dir.join("optimizer.bin"), e))?;
            optimizer = optimizer.load_record(optimizer_record);
        }
    }
    let spec = PreprocessingSpec {
        size: preprocessed.options.size,
        channels: preprocessed
            .options
            .channels
            .clone()
            .unwrap_or_else(|| (0..config.in_channels).collect()),
        modalities: preprocessed.modalities.clone(),
        ct_statistics: preprocessed.ct_statistics.clone(),
        labels: preprocessed.labels.clone(),
    };
    let batch_size = options.training.batch_size.min(train_samples.len());
    let steps = train_samples.len().div_ceil(batch_size);
    let first_epoch = state.epochs_completed + 1;
    on_event(TrainEvent::Started {
        train_cases: train_samples.len(),
        val_cases: val_samples.len(),
        first_epoch,
        epochs: options.training.epochs,
        llm_weights: llm_source.clone(),
    });
    let started = Instant::now();
    let mut steps_done = 0usize;
    let total_steps = (options.training.epochs + 1 - first_epoch.min(options.training.epochs + 1)) * steps;
    let mut stopped = false;
    for epoch in first_epoch..=options.training.epochs {
        let epoch_started = Instant::now();
        let epoch_seed = options
            .training
            .seed
            .wrapping_mul(1_000_003)
            .wrapping_add(epoch as u64);
        B::seed(device, epoch_seed);
        let mut order: Vec<usize> = (0..train_samples.len()).collect();
        let mut rng = Rng::new(epoch_seed);
        rng.shuffle(&mut order);
        let mut loss_sum = 0.0;
        for (step, chunk) in order.chunks(batch_size).enumerate() {
            let items: Vec<_> = chunk
                .iter()
                .map(|i| {
                    let sample = &train_samples[*i];
                    if options.training.augment {
                        augment(sample, &mut rng)
                    } else {
                        (sample.image.clone(), sample.label.clone())
                    }
                })
                .collect();
            let (input, target) = batch_tensors::<B>(&items, config, device);
            let loss = segmentation_loss(model.forward(input), target, config.output);
            let loss_value = f64::from(loss.clone().into_scalar().elem::<f32>());
            if !loss_value.is_finite() {
                return Err(invalid(format!(
                    "the loss became {loss_value} at epoch {epoch}, step {}; lower the learning rate",
                    step + 1
                )));
            }
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optimizer.step(options.training.learning_rate, model, grads);
            loss_sum += loss_value;
            steps_done += 1;
            let per_step = started.elapsed().as_secs_f64() / steps_done as f64;
            on_event(TrainEvent::Progress {
                epoch,
                step: step + 1,
                steps,
                loss: loss_value,
                eta_secs: per_step * total_steps.saturating_sub(steps_done) as f64,
            });
            if stop.load(Ordering::Relaxed) {
                stopped = true;
                break;
            }
        }
        if stopped {
            break;
        }
        let val_dice = validation_dice(&model, &val_samples, config, device);
        let record = EpochRecord {
            epoch,
            train_loss: loss_sum / steps as f64,
            val_dice,
            seconds: epoch_started.elapsed().as_secs_f64(),
        };
        on_event(TrainEvent::Epoch {
            epoch,
            train_loss: record.train_loss,
            val_dice,
            seconds: record.seconds,
        });
        state.history.push(record);
        state.epochs_completed = epoch;
        let meta = |epoch: usize, dice: f64| CheckpointMeta {
            llm_weights: llm_source.clone(),
            preprocessing: Some(spec.clone()),
            training: serde_json::json!({"epoch": epoch, "val_dice": dice, "fold": options.fold, "task": options.data}),
        };
        if val_dice > state.best_val_dice {
            state.best_val_dice = val_dice;
            let best = options.out.join("best");
            replace_folder(&best, |dir| {
                Ok(save_checkpoint(dir, &model, config, &meta(epoch, val_dice))?)
            })?;
            on_event(TrainEvent::CheckpointSaved { path: best, val_dice });
        }
        save_last(
            &last_dir,
            &model,
            &optimizer,
            &recorder,
            config,
            &meta(epoch, val_dice),
            &state,
        )?;
        write_bytes(
            &options.out.join("history.json"),
            &serde_json::to_vec_pretty(&state.history).map_err(|e| invalid(e.to_string()))?,
        )?;
    }
    if stopped {
        // The interrupted epoch is redone on resume; the model state is kept as it is now.
        let meta = CheckpointMeta {
            llm_weights: llm_source,
            preprocessing: Some(spec),
            training: serde_json::json!({"stopped_in_epoch": state.epochs_completed + 1}),
        };
        save_last(&last_dir, &model, &optimizer, &recorder, config, &meta, &state)?;
    }
    let best_val_dice = if state.best_val_dice.is_finite() {
        state.best_val_dice
    } else {
        0.0
    };
    on_event(TrainEvent::Finished {
        best_val_dice,
        stopped,
    });
    Ok(TrainSummary {
        best_val_dice,
        epochs_completed: state.epochs_completed,
        stopped,
        history: state.history,
    })
}

fn save_last<B: AutodiffBackend, O: Optimizer<MedVisionLlama<B>, B>>(
    last_dir: &Path,
    model: &MedVisionLlama<B>,
    optimizer: &O,
    recorder: &BinBytesRecorder<FullPrecisionSettings>,
    config: &ModelConfig,
    meta: &CheckpointMeta,
    state: &LastState,
) -> Result<(), TrainError> {
    replace_folder(last_dir, |dir| {
        save_checkpoint(dir, model, config, meta)?;
        let model_bytes = recorder
            .record(model.clone().into_record(), ())
            .map_err(|e| file_error(&dir.join("model.bin"), e))?;
        write_bytes(&dir.join("model.bin"), &model_bytes)?;
        let optimizer_bytes = recorder
            .record(optimizer.to_record(), ())
            .map_err(|e| file_error(&dir.join("optimizer.bin"), e))?;
        write_bytes(&dir.join("optimizer.bin"), &optimizer_bytes)?;
        write_bytes(
            &dir.join("state.json"),
            &serde_json::to_vec_pretty(state).map_err(|e| invalid(e.to_string()))?,
        )
    })
}
