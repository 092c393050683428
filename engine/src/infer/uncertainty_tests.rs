use super::*;
use crate::model::network_tests::tiny_config;
use crate::volume::{Affine, Geometry};
use burn::backend::Flex;

#[test]
fn flipping_moves_each_voxel_to_its_mirror_in_every_channel_and_undoes_itself() {
    let geometry = Geometry {
        shape: [4, 3, 2],
        world_from_voxel: Affine::from_diagonal([1.0, 2.0, 3.0]),
    };
    let [nx, ny, nz] = geometry.shape;
    let value = |c: usize, x: usize, y: usize, z: usize| (c * 1000 + x * 100 + y * 10 + z) as f32;
    let voxels: Vec<f32> = (0..2)
        .flat_map(|c| {
            (0..nz).flat_map(move |z| (0..ny).flat_map(move |y| (0..nx).map(move |x| value(c, x, y, z))))
        })
        .collect();
    let volume = Volume::new(geometry.shape, 2, voxels, geometry.world_from_voxel).expect("shape");
    for flip in UncertaintyMethod::AllAxes.flips() {
        let flipped = flip_volume(&volume, flip);
        for c in 0..2 {
            for z in 0..nz {
                for y in 0..ny {
                    for x in 0..nx {
                        let from = [
                            if flip[0] { nx - 1 - x } else { x },
                            if flip[1] { ny - 1 - y } else { y },
                            if flip[2] { nz - 1 - z } else { z },
                        ];
                        let got = flipped.channel(c)[x + nx * (y + ny * z)];
                        assert_eq!(
                            got,
                            value(c, from[0], from[1], from[2]),
                            "{flip:?} at {x},{y},{z}"
                        );
                    }
                }
            }
        }
        assert_eq!(flip_volume(&flipped, flip).voxels(), volume.voxels());
    }
}

#[test]
fn the_mirrorings_are_distinct_and_start_with_the_scan_as_it_is() {
    for (mirroring, count) in [(UncertaintyMethod::EachAxis, 4), (UncertaintyMethod::AllAxes, 8)] {
        let flips = mirroring.flips();
        assert_eq!(flips.len(), count);
        assert_eq!(flips[0], [false; 3]);
        let distinct: std::collections::BTreeSet<_> = flips.iter().collect();
        assert_eq!(distinct.len(), count);
    }
}

#[test]
fn voxel_uncertainty_is_the_normalised_entropy() {
    let close = |a: f32, b: f64| (f64::from(a) - b).abs() < 1e-6;
    // Softmax: uniform over 3 classes is 1, certain is 0, even odds between two of three is
    // ln 2 / ln 3.
    assert!(close(
        voxel_uncertainty(&[1.0 / 3.0; 3], OutputKind::Softmax),
        1.0
    ));
    assert!(close(
        voxel_uncertainty(&[0.0, 1.0, 0.0], OutputKind::Softmax),
        0.0
    ));
    assert!(close(
        voxel_uncertainty(&[0.5, 0.5, 0.0], OutputKind::Softmax),
        2f64.ln() / 3f64.ln()
    ));
    // Sigmoid: binary entropy in bits; the least certain channel counts.
    assert!(close(voxel_uncertainty(&[0.5], OutputKind::Sigmoid), 1.0));
    let h = |p: f64| -(p * p.log2() + (1.0 - p) * (1.0 - p).log2());
    assert!(close(voxel_uncertainty(&[0.1], OutputKind::Sigmoid), h(0.1)));
    assert!(close(
        voxel_uncertainty(&[0.99, 0.2, 0.0], OutputKind::Sigmoid),
        h(0.2)
    ));
}

#[test]
fn region_mean_averages_only_inside() {
    assert_eq!(region_mean(&[1.0, 2.0, 4.0], &[true, false, true]), 2.5);
    assert_eq!(region_mean(&[1.0, 2.0], &[false, false]), 0.0);
}

#[test]
fn mirrored_prediction_averages_the_flipped_back_probabilities_of_every_mirroring() -> Result<(), InferError>
{
    let device = Default::default();
    let (config, model, image, spec) = softmax_model_and_scan(0.0);
    let result = predict_with_uncertainty(
        &model,
        &config,
        &spec,
        &image,
        UncertaintyMethod::EachAxis,
        &device,
    )?;

    // The same mean computed another way: each mirrored input predicted on its own, read back
    // through the mirror index by hand.
    let input = model_input(&image, &config, &spec)?;
    let [nx, ny, nz] = input.shape();
    let len = nx * ny * nz;
    let flips = UncertaintyMethod::EachAxis.flips();
    let mut mean = vec![0f64; 3 * len];
    let mut considered = vec![false; len];
    for flip in &flips {
        let mirrored = flip_volume(&input, *flip);
        let probabilities = model_grid_probabilities(&model, &mirrored, &device)?;
        for z in 0..nz {
            for y in 0..ny {
                for x in 0..nx {
                    let mx = if flip[0] { nx - 1 - x } else { x };
                    let my = if flip[1] { ny - 1 - y } else { y };
                    let mz = if flip[2] { nz - 1 - z } else { z };
                    let (here, there) = (x + nx * (y + ny * z), mx + nx * (my + ny * mz));
                    let p: Vec<f32> = (0..3).map(|c| probabilities.channel(c)[there]).collect();
                    for c in 0..3 {
                        mean[c * len + here] += f64::from(p[c]) / flips.len() as f64;
                    }
                    let argmax = (0..3).max_by(|a, b| p[*a].total_cmp(&p[*b])).unwrap_or(0);
                    considered[here] |= argmax != 0;
                }
            }
        }
    }
    let got = result.prediction.probabilities.voxels();
    let worst = got
        .iter()
        .zip(&mean)
        .map(|(a, b)| (f64::from(*a) - b).abs())
        .fold(0.0, f64::max);
    assert!(worst < 1e-5, "mean probabilities differ by {worst}");
    // The map is the entropy of that mean, normalised by ln 3, voxel by voxel.
    let mut expected_score = (0.0, 0);
    for i in 0..len {
        let entropy: f64 = (0..3)
            .map(|c| mean[c * len + i])
            .filter(|p| *p > 0.0)
            .map(|p| -p * p.ln())
            .sum::<f64>()
            / 3f64.ln();
        let got = f64::from(result.uncertainty.voxels()[i]);
        assert!((got - entropy).abs() < 1e-4, "voxel {i}: {got} vs {entropy}");
        if considered[i] {
            expected_score = (expected_score.0 + entropy, expected_score.1 + 1);
        }
    }
    assert!(
        expected_score.1 > 0,
        "an untrained model labels some voxels foreground"
    );
    let expected = expected_score.0 / f64::from(expected_score.1);
    assert!(
        (result.score - expected).abs() < 1e-4,
        "{} vs {expected}",
        result.score
    );
    assert!(result.score > 0.0 && result.score <= 1.0);
    Ok(())
}

/// A scan on the tiny model's own grid (resampling to and from it moves nothing).
fn scan_on_model_grid(config: &ModelConfig) -> Volume {
    let geometry = Geometry {
        shape: config.image_size,
        world_from_voxel: Affine::identity(),
    };
    Volume::from_fn(&geometry, |x, y, z| {
        ((x * 7 + y * 3 + z * 5) % 11) as f32 * 40.0 + if x > 9 { 300.0 } else { 0.0 }
    })
}

/// The tiny model as a 3-class softmax with ViT dropout `dropout`, a scan on its grid, and the
/// scan's default preprocessing.
fn softmax_model_and_scan(dropout: f64) -> (ModelConfig, MedVisionLlama<Flex>, Volume, PreprocessingSpec) {
    let mut config = tiny_config();
    config.out_channels = 3;
    config.output = OutputKind::Softmax;
    config.dropout = dropout;
    let model = MedVisionLlama::<Flex>::new(&config, None, &Default::default());
    let image = scan_on_model_grid(&config);
    let spec = super::super::default_spec(&config, &image);
    (config, model, image, spec)
}

#[test]
fn monte_carlo_dropout_is_refused_for_a_model_without_dropout() {
    type B = Flex;
    let device = Default::default();
    let config = tiny_config();
    assert_eq!(config.dropout, 0.0);
    let model = MedVisionLlama::<B>::new(&config, None, &device);
    let image = scan_on_model_grid(&config);
    let spec = super::super::default_spec(&config, &image);
    let refused = predict_with_uncertainty(
        &model,
        &config,
        &spec,
        &image,
        UncertaintyMethod::McDropout,
        &device,
    );
    let message = refused.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        message.contains("needs a model trained with dropout") && message.contains("mirroring"),
        "{message}"
    );
    for method in [UncertaintyMethod::EachAxis, UncertaintyMethod::AllAxes] {
        assert!(method.check(&config).is_ok(), "{method:?} needs no dropout");
    }
}

#[test]
fn monte_carlo_dropout_samples_masks_and_leaves_the_model_deterministic() -> Result<(), InferError> {
    let device = Default::default();
    let (config, model, image, spec) = softmax_model_and_scan(0.3);
    let input = model_input(&image, &config, &spec)?;
    let plain = model_grid_probabilities(&model, &input, &device)?;

    let result = predict_with_uncertainty(
        &model,
        &config,
        &spec,
        &image,
        UncertaintyMethod::McDropout,
        &device,
    )?;
    // Eight masks: the mean is not the dropout-free prediction.
    let moved = result
        .prediction
        .probabilities
        .voxels()
        .iter()
        .zip(plain.voxels())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(
        moved > 1e-3,
        "the mean of 8 samples equals the plain prediction (max diff {moved})"
    );
    // The map is still the normalised entropy of that mean, voxel by voxel.
    let mean = &result.prediction.probabilities;
    let len = mean.channel_len();
    for i in 0..len {
        let p: Vec<f32> = (0..3).map(|c| mean.voxels()[c * len + i]).collect();
        let entropy: f64 = p
            .iter()
            .map(|p| f64::from(*p))
            .filter(|p| *p > 0.0)
            .map(|p| -p * p.ln())
            .sum::<f64>()
            / 3f64.ln();
        let got = f64::from(result.uncertainty.voxels()[i]);
        assert!((got - entropy).abs() < 1e-4, "voxel {i}: {got} vs {entropy}");
    }
    assert!(result.score > 0.0 && result.score <= 1.0, "{}", result.score);
    // The model it was given still predicts without sampling: the same values as before.
    let again = model_grid_probabilities(&model, &input, &device)?;
    assert_eq!(again.voxels(), plain.voxels());
    // And the sampling copy really samples: two passes differ.
    let sampling = model.clone().sampling_dropout(true);
    let a = model_grid_probabilities(&sampling, &input, &device)?;
    let b = model_grid_probabilities(&sampling, &input, &device)?;
    assert_ne!(a.voxels(), b.voxels());
    Ok(())
}

#[test]
fn scores_are_recorded_per_case_and_a_new_method_starts_afresh() -> Result<(), String> {
    let folder = tempfile::tempdir().map_err(|e| e.to_string())?;
    assert_eq!(
        UncertaintyScores::load(folder.path())?,
        UncertaintyScores::default()
    );
    UncertaintyScores::record(folder.path(), "flips", "a", 0.25)?;
    UncertaintyScores::record(folder.path(), "flips", "b", 0.5)?;
    let scores = UncertaintyScores::load(folder.path())?;
    assert_eq!(scores.scores.len(), 2);
    assert_eq!(scores.scores.get("b"), Some(&0.5));
    UncertaintyScores::record(folder.path(), "other", "c", 0.1)?;
    let scores = UncertaintyScores::load(folder.path())?;
    assert_eq!((scores.method.as_str(), scores.scores.len()), ("other", 1));
    std::fs::write(UncertaintyScores::path(folder.path()), "not json").map_err(|e| e.to_string())?;
    let refused = UncertaintyScores::load(folder.path()).expect_err("corrupt");
    assert!(refused.contains(UNCERTAINTY_FILE), "{refused}");
    Ok(())
}
