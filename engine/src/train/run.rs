//! The training loop.

use super::batches::prefetch;
use super::compatibility::{check_same_network, check_same_run};
use super::guard::{Divergence, clip_gradient_norm, epoch_divergence};
use super::samples::{class_fractions, load_samples};
use super::schedule::learning_rate;
use super::selection::{Subset, select_cases};
use super::validate::validation_dice_per_class;
use super::{TrainError, TrainEvent, TrainingConfig, segmentation_loss_tokens_with};
use crate::checkpoint::{CheckpointMeta, PreprocessingSpec, llm_weights_for, save_checkpoint};
use crate::data::{self, PreprocessOptions, PreprocessedTask, SplitOptions, Splits};
use crate::model::EngineAutodiffBackend;
use crate::model::{MedVisionLlama, ModelConfig, OutputKind};
use crate::rng::Rng;
use crate::volume::write_atomically;
use burn::module::{AutodiffModule, Module};
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{Adam, AdamConfig, GradientsParams, Optimizer};
use burn::record::{BinBytesRecorder, FullPrecisionSettings, Recorder};
use burn::tensor::{ElementConversion, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

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
    /// Let `Subset::Ids` name held-out test cases (they are then left out of test reports).
    pub allow_test_cases: bool,
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
    /// Held-out test cases trained on anyway (`--allow-test-cases`); test reports leave them out.
    #[serde(default)]
    pub trained_test_cases: Vec<String>,
}

/// One epoch in `history.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// Epoch (1-based).
    pub epoch: usize,
    /// Mean training loss (NaN, written as null, when a rolled-back epoch's loss was).
    #[serde(deserialize_with = "nan_if_null")]
    pub train_loss: f64,
    /// Mean validation Dice (foreground classes averaged; null for a rolled-back epoch).
    #[serde(deserialize_with = "nan_if_null")]
    pub val_dice: f64,
    /// Validation Dice of each foreground class (NaN, written as null, for a class absent from
    /// every validation case and every prediction).
    #[serde(default, deserialize_with = "nan_if_null_each")]
    pub val_dice_per_class: Vec<f64>,
    /// Learning rate at the epoch's last step (null for a rolled-back epoch).
    #[serde(default, deserialize_with = "nan_if_null")]
    pub learning_rate: f64,
    /// Seconds.
    pub seconds: f64,
    /// Set when this epoch diverged and the run went back (why, and to which epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rolled_back: Option<String>,
}

/// JSON has no NaN: serde_json writes it as null, and this reads null back as NaN.
fn nan_if_null<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(deserializer)?.unwrap_or(f64::NAN))
}

/// [`nan_if_null`] for each element.
fn nan_if_null_each<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<f64>, D::Error> {
    Ok(Vec::<Option<f64>>::deserialize(deserializer)?
        .into_iter()
        .map(|v| v.unwrap_or(f64::NAN))
        .collect())
}

/// Reads null (how serde_json writes −∞) back as −∞.
fn minus_infinity_if_null<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(deserializer)?.unwrap_or(f64::NEG_INFINITY))
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

#[derive(Debug, Clone, Serialize, Deserialize)]
struct LastState {
    epochs_completed: usize,
    /// −∞ before the first validation, which JSON writes as null.
    #[serde(deserialize_with = "minus_infinity_if_null")]
    best_val_dice: f64,
    history: Vec<EpochRecord>,
    /// Learning-rate multiplier after rollbacks.
    #[serde(default = "one")]
    lr_scale: f64,
    /// Rollbacks so far.
    #[serde(default)]
    rollbacks: usize,
    /// Mean loss of the last good epoch.
    #[serde(default)]
    last_good_loss: Option<f64>,
}

fn one() -> f64 {
    1.0
}

impl Default for LastState {
    fn default() -> Self {
        Self {
            epochs_completed: 0,
            best_val_dice: f64::NEG_INFINITY,
            history: Vec::new(),
            lr_scale: 1.0,
            rollbacks: 0,
            last_good_loss: None,
        }
    }
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

/// A failed read or write, with what to do about it (a full disk, say).
fn io_file_error(path: &Path, error: std::io::Error) -> TrainError {
    file_error(path, crate::fault::describe(&error))
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

/// Refuses to write `info` over a run folder that holds checkpoints of a run with other options
/// than the number of epochs (resuming it, or starting afresh in it, would mix two runs).
fn refuse_other_run(out: &Path, info: &RunInfo) -> Result<(), TrainError> {
    let path = out.join("run.json");
    let has_checkpoints = ["best", "last", "last.old"].iter().any(|d| out.join(d).is_dir());
    if !has_checkpoints || !path.is_file() {
        return Ok(());
    }
    let text = std::fs::read_to_string(&path).map_err(|e| file_error(&path, e))?;
    let saved: RunInfo = serde_json::from_str(&text).map_err(|e| file_error(&path, e))?;
    // The number of epochs may change: a run is resumed to train longer (or shorter). Its
    // learning-rate schedule then changes too, so only a resume with the same number ends
    // exactly as an uninterrupted run.
    let canonical = |run: &RunInfo| RunInfo {
        task: std::fs::canonicalize(&run.task).unwrap_or_else(|_| run.task.clone()),
        training: TrainingConfig {
            epochs: info.training.epochs,
            ..run.training.clone()
        },
        ..run.clone()
    };
    check_same_run(&canonical(&saved), &canonical(info), out)
}

/// Writes a folder whole (see [`crate::atomic`]): a crash leaves the previous folder or the new
/// one, never a mixture.
fn replace_folder(
    target: &Path,
    write: impl FnOnce(&Path) -> Result<(), TrainError>,
) -> Result<(), TrainError> {
    crate::atomic::replace_folder(target, write, io_file_error)
}

fn write_bytes(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    write_atomically(path, |w| std::io::Write::write_all(w, bytes)).map_err(|e| io_file_error(path, e))
}

/// Trains per `options`, reporting through `on_event`; `stop` ends it after the current step with
/// a usable `last/` checkpoint.
pub fn train<B: EngineAutodiffBackend>(
    options: &TrainOptions,
    device: &B::Device,
    stop: &AtomicBool,
    on_event: &mut dyn FnMut(TrainEvent),
) -> Result<TrainSummary, TrainError> {
    options.model.validate().map_err(|e| invalid(e.to_string()))?;
    if options.training.batch_size == 0 || options.training.epochs == 0 {
        return Err(invalid("batch_size and epochs must be at least 1"));
    }
    std::fs::create_dir_all(&options.out).map_err(|e| io_file_error(&options.out, e))?;
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
        options.allow_test_cases,
        &task_training_ids,
    )?;
    let (train_ids, val_ids) = (selection.train, selection.val);
    let mut train_samples = load_samples(&preprocessed, &train_ids).map_err(invalid)?;
    let mut val_samples = load_samples(&preprocessed, &val_ids).map_err(invalid)?;
    // Normalisation statistics from this run's training cases only (stored in its checkpoints).
    let ct_statistics = data::training_ct_statistics(
        train_samples.iter().map(|s| (&s.image, &s.label)),
        &preprocessed.modalities,
    );
    for sample in train_samples.iter_mut().chain(val_samples.iter_mut()) {
        data::normalise_channels(&mut sample.image, &preprocessed.modalities, &ct_statistics);
    }
    let config = &task_config(&options.model, &preprocessed);
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
        trained_test_cases: splits
            .test
            .iter()
            .filter(|id| train_ids.contains(id))
            .cloned()
            .collect(),
    };
    refuse_other_run(&options.out, &info)?;
    write_bytes(
        &options.out.join("run.json"),
        &serde_json::to_vec_pretty(&info).map_err(|e| invalid(e.to_string()))?,
    )?;
    let weights = llm_weights_for(config).map_err(crate::checkpoint::CheckpointError::from)?;
    let llm_source = config.llm_weights_source(weights.as_ref());
    let llm_fingerprint = weights
        .as_ref()
        .map(crate::weights::FrozenBlockWeights::fingerprint);
    let mut model = MedVisionLlama::<B>::new(config, weights, device);
    if let Some(init) = &options.init_from {
        let (checkpoint_config, _) = crate::checkpoint::read_checkpoint_config(init)?;
        if checkpoint_config.out_channels != config.out_channels || checkpoint_config.output != config.output
        {
            return Err(invalid(format!(
                "{} predicts {} {:?} channels but this task needs {}; start from scratch or pick a checkpoint of this task",
                init.display(),
                checkpoint_config.out_channels,
                checkpoint_config.output,
                config.out_channels
            )));
        }
        check_same_network(&checkpoint_config, config, init)?;
        // The frozen weights are this run's (`load_checkpoint` refuses other ones by fingerprint).
        let loaded = crate::checkpoint::load_checkpoint::<B>(init, config.llm.checkpoint.as_deref(), device)?;
        model = loaded.model;
    } else if options.training.prior_init {
        model = model.with_output_prior(&class_fractions(
            &train_samples,
            config.output,
            config.out_channels,
        ));
    }
    let mut optimizer = AdamConfig::new().init::<B, MedVisionLlama<B>>();
    let recorder = BinBytesRecorder::<FullPrecisionSettings>::default();
    let last_dir = options.out.join("last");
    let mut state = LastState::default();
    if options.resume {
        // A run killed between the two renames of a folder replacement left `NAME.old` only.
        for folder in [&last_dir, &options.out.join("best")] {
            crate::atomic::recover_folder(folder).map_err(|e| file_error(folder, e))?;
        }
        let dir = last_dir.clone();
        if dir.join("state.json").is_file() {
            // A network of another shape would make burn's record loading panic: say so instead.
            let (saved_config, _) = crate::checkpoint::read_checkpoint_config(&dir)?;
            if &saved_config != config {
                check_same_network(&saved_config, config, &dir)?;
                return Err(invalid(format!(
                    "{} was saved with another model config; resume with the preset it was trained with",
                    dir.display()
                )));
            }
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
    // The frozen block in the run's precision (after loading: records hold trainable weights
    // only, so neither a resume nor a fine-tuning start changes it back).
    let mut model = options.training.dtype.apply(model, device).map_err(invalid)?;
    let spec = PreprocessingSpec {
        size: preprocessed.options.size,
        channels: preprocessed
            .options
            .channels
            .clone()
            .unwrap_or_else(|| (0..config.in_channels).collect()),
        modalities: preprocessed.modalities.clone(),
        ct_statistics,
        labels: preprocessed.labels.clone(),
    };
    let training = &options.training;
    let batch_size = training.batch_size.min(train_samples.len());
    let steps = train_samples.len().div_ceil(batch_size);
    let first_epoch = state.epochs_completed + 1;
    on_event(TrainEvent::Started {
        train_cases: train_samples.len(),
        val_cases: val_samples.len(),
        first_epoch,
        epochs: training.epochs,
        llm_weights: llm_source.clone(),
    });
    let schedule_steps = training.epochs * steps;
    let warmup_steps = (training.warmup_fraction * schedule_steps as f64).round() as usize;
    let started = Instant::now();
    let mut steps_done = 0usize;
    let mut steps_left = (training.epochs + 1).saturating_sub(first_epoch) * steps;
    let mut stopped = false;
    // The state the run rolls back to when it diverges: the end of the last good epoch.
    let mut good = (model.clone(), optimizer.clone(), state.clone());
    let mut epoch = first_epoch;
    let mut last_saved = Instant::now();
    while epoch <= training.epochs {
        let epoch_started = Instant::now();
        let epoch_seed = training.seed.wrapping_mul(1_000_003).wrapping_add(epoch as u64);
        B::seed(device, epoch_seed);
        let mut order: Vec<usize> = (0..train_samples.len()).collect();
        Rng::new(epoch_seed).shuffle(&mut order);
        let augment_seed = training.augment.then_some(epoch_seed ^ AUGMENT_SEED_SALT);
        let lr_scale = state.lr_scale;
        let (trained, stepped, outcome) = std::thread::scope(|scope| {
            let batches = prefetch(scope, &train_samples, order, batch_size, config, augment_seed);
            let (mut model, mut optimizer) = (model, optimizer);
            let mut loss_sum = 0.0;
            let mut first_loss = None;
            let (tokens, patch_volume) = (config.tokens(), config.patch_size.pow(3));
            for (step, batch) in batches.iter().enumerate() {
                let global_step = (epoch - 1) * steps + step;
                let lr = lr_scale
                    * learning_rate(
                        training.schedule,
                        training.learning_rate,
                        global_step,
                        schedule_steps,
                        warmup_steps,
                    );
                let patches = Tensor::<B, 3>::from_data(
                    TensorData::new(batch.patches, [batch.size, tokens, config.patch_features()]),
                    device,
                );
                let targets = batch
                    .targets
                    .into_iter()
                    .map(|t| {
                        Tensor::<B, 3>::from_data(
                            TensorData::new(t, [batch.size, tokens, patch_volume]),
                            device,
                        )
                    })
                    .collect();
                let loss = segmentation_loss_tokens_with(
                    model.forward_patches(patches),
                    targets,
                    config.output,
                    training.dice_background,
                );
                let loss_value = f64::from(loss.clone().into_scalar().elem::<f32>());
                if !loss_value.is_finite() {
                    return (
                        model,
                        optimizer,
                        EpochOutcome::Diverged(Divergence::NonFiniteLoss(loss_value)),
                    );
                }
                let mut grads = GradientsParams::from_grads(loss.backward(), &model);
                let norm = clip_gradient_norm::<B, _>(&model, &mut grads, training.grad_clip_norm);
                if !norm.is_finite() {
                    return (
                        model,
                        optimizer,
                        EpochOutcome::Diverged(Divergence::NonFiniteGradient),
                    );
                }
                model = optimizer.step(lr, model, grads);
                first_loss.get_or_insert(loss_value);
                loss_sum += loss_value;
                steps_done += 1;
                steps_left = steps_left.saturating_sub(1);
                let per_step = started.elapsed().as_secs_f64() / steps_done as f64;
                on_event(TrainEvent::Progress {
                    epoch,
                    step: step + 1,
                    steps,
                    loss: loss_value,
                    eta_secs: per_step * steps_left as f64,
                });
                if stop.load(Ordering::Relaxed) {
                    return (model, optimizer, EpochOutcome::Stopped);
                }
            }
            let last_lr = lr_scale
                * learning_rate(
                    training.schedule,
                    training.learning_rate,
                    epoch * steps - 1,
                    schedule_steps,
                    warmup_steps,
                );
            let outcome = EpochOutcome::Done {
                loss: loss_sum / steps as f64,
                first_loss: first_loss.unwrap_or(f64::NAN),
                lr: last_lr,
            };
            (model, optimizer, outcome)
        });
        model = trained;
        optimizer = stepped;
        // A step that diverged, or an epoch whose loss jumped, sends the run back.
        let (train_loss, lr, divergence) = match outcome {
            EpochOutcome::Stopped => {
                stopped = true;
                break;
            }
            EpochOutcome::Done { loss, first_loss, lr } => {
                // Before any good epoch, the reference is the loss of the untouched model (the
                // first step's, measured before its update).
                let reference = state.last_good_loss.or(Some(first_loss));
                (
                    loss,
                    lr,
                    epoch_divergence(reference, loss, training.loss_jump_factor),
                )
            }
            EpochOutcome::Diverged(divergence) => (f64::NAN, f64::NAN, Some(divergence)),
        };
        if let Some(divergence) = divergence {
            roll_back(
                divergence,
                &mut good,
                &mut model,
                &mut optimizer,
                &mut state,
                &mut epoch,
                training,
                on_event,
            )?;
            continue;
        }
        let (per_class, val_dice) = validation_dice_per_class(&model.valid(), &val_samples, config, device);
        let record = EpochRecord {
            epoch,
            train_loss,
            val_dice,
            val_dice_per_class: per_class.clone(),
            learning_rate: lr,
            seconds: epoch_started.elapsed().as_secs_f64(),
            rolled_back: None,
        };
        on_event(TrainEvent::Epoch {
            epoch,
            train_loss,
            val_dice,
            val_dice_per_class: per_class,
            learning_rate: lr,
            seconds: record.seconds,
        });
        state.history.push(record);
        state.epochs_completed = epoch;
        state.last_good_loss = Some(train_loss);
        let meta = |epoch: usize, dice: f64| CheckpointMeta {
            llm_weights: llm_source.clone(),
            llm_fingerprint: llm_fingerprint.clone(),
            preprocessing: Some(spec.clone()),
            training: serde_json::json!({"epoch": epoch, "val_dice": dice, "fold": options.fold, "task": options.data}),
        };
        // NaN (no class present in any validation case, nor predicted) never improves, but the
        // first epoch still writes best/ so a run always ends with one.
        let first_best = !options.out.join("best").is_dir() && state.best_val_dice == f64::NEG_INFINITY;
        if val_dice > state.best_val_dice || first_best {
            if !val_dice.is_nan() {
                state.best_val_dice = val_dice;
            }
            let best = options.out.join("best");
            replace_folder(&best, |dir| {
                Ok(save_checkpoint(dir, &model, config, &meta(epoch, val_dice))?)
            })?;
            on_event(TrainEvent::CheckpointSaved { path: best, val_dice });
        }
        // last/ (model, Adam state, history) is the resume point: written at most every
        // last_save_interval_secs and after the last epoch; a stop writes it too.
        if last_saved.elapsed().as_secs_f64() >= training.last_save_interval_secs || epoch == training.epochs
        {
            save_last(
                &last_dir,
                &model,
                &optimizer,
                &recorder,
                config,
                &meta(epoch, val_dice),
                &state,
            )?;
            last_saved = Instant::now();
        }
        write_history(&options.out, &state.history)?;
        good = (model.clone(), optimizer.clone(), state.clone());
        epoch += 1;
    }
    if stopped {
        // The resume point is the end of the last completed epoch (model, Adam state, history):
        // the interrupted epoch is redone from its start with its own seed, so a stopped and
        // resumed run ends exactly as an uninterrupted one.
        let (model, optimizer, state) = &good;
        let meta = CheckpointMeta {
            llm_weights: llm_source,
            llm_fingerprint,
            preprocessing: Some(spec),
            training: serde_json::json!({"stopped_in_epoch": state.epochs_completed + 1}),
        };
        save_last(&last_dir, model, optimizer, &recorder, config, &meta, state)?;
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

/// Mixed into the epoch seed for the augmentation stream (apart from the shuffling stream).
const AUGMENT_SEED_SALT: u64 = 0x5eed_a06e;

/// How the steps of one epoch ended.
enum EpochOutcome {
    /// Every step ran: the mean loss, the first step's loss and the last learning rate.
    Done { loss: f64, first_loss: f64, lr: f64 },
    /// A stop request ended it.
    Stopped,
    /// A step diverged.
    Diverged(Divergence),
}

/// The preset's network fitted to the task: a softmax output gets one channel per class of
/// `dataset.json` (background included), so that every label is predicted apart.
fn task_config(model: &ModelConfig, task: &PreprocessedTask) -> ModelConfig {
    let mut config = model.clone();
    if config.output == OutputKind::Softmax && task.labels.len() >= 2 {
        config.out_channels = task.labels.len();
    }
    config
}

fn write_history(out: &Path, history: &[EpochRecord]) -> Result<(), TrainError> {
    write_bytes(
        &out.join("history.json"),
        &serde_json::to_vec_pretty(history).map_err(|e| invalid(e.to_string()))?,
    )
}

type Snapshot<B> = (
    MedVisionLlama<B>,
    OptimizerAdaptor<Adam, MedVisionLlama<B>, B>,
    LastState,
);

/// Goes back to the last good state with a lower learning rate, noting it in the history and
/// telling the caller; an error once the run has rolled back `max_rollbacks` times.
#[allow(clippy::too_many_arguments)]
fn roll_back<B: EngineAutodiffBackend>(
    divergence: Divergence,
    good: &mut Snapshot<B>,
    model: &mut MedVisionLlama<B>,
    optimizer: &mut OptimizerAdaptor<Adam, MedVisionLlama<B>, B>,
    state: &mut LastState,
    epoch: &mut usize,
    training: &TrainingConfig,
    on_event: &mut dyn FnMut(TrainEvent),
) -> Result<(), TrainError> {
    let rollbacks = state.rollbacks + 1;
    if rollbacks > training.max_rollbacks {
        return Err(invalid(format!(
            "training diverged at epoch {epoch} ({divergence}) after {} rollbacks with a lower learning rate; lower learning_rate in the preset (now {})",
            training.max_rollbacks, training.learning_rate
        )));
    }
    let diverged_epoch = *epoch;
    let (good_model, good_optimizer, good_state) = good.clone();
    *model = good_model;
    *optimizer = good_optimizer;
    let mut history = good_state.history.clone();
    let lr_scale = state.lr_scale * training.rollback_lr_factor;
    history.push(EpochRecord {
        epoch: diverged_epoch,
        train_loss: match &divergence {
            Divergence::LossJump { now, .. } => *now,
            _ => f64::NAN,
        },
        val_dice: f64::NAN,
        val_dice_per_class: Vec::new(),
        learning_rate: f64::NAN,
        seconds: 0.0,
        rolled_back: Some(format!(
            "{divergence}; back to epoch {} with the learning rate × {lr_scale}",
            good_state.epochs_completed
        )),
    });
    *state = LastState {
        history,
        lr_scale,
        rollbacks,
        ..good_state
    };
    // The snapshot keeps the new scale and count, so a second rollback goes further down.
    good.2 = state.clone();
    *epoch = state.epochs_completed + 1;
    on_event(TrainEvent::RolledBack {
        epoch: diverged_epoch,
        to_epoch: state.epochs_completed,
        reason: divergence.to_string(),
        lr_scale,
    });
    Ok(())
}

fn save_last<B: EngineAutodiffBackend, O: Optimizer<MedVisionLlama<B>, B>>(
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
