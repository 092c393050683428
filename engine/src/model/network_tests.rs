//! The network: parameter counts against the closed forms, patch layout against a brute-force
//! index computation, and frozen-means-frozen through a real optimiser step.

use super::llama_tests::{max_diff, tiny_llm_config, tiny_weights};
use super::*;
use burn::backend::{Autodiff, Flex};
use burn::module::AutodiffModule;
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::tensor::{Tensor, TensorData};

type B = Flex;
type A = Autodiff<Flex>;

/// A tiny MedVisionLlama: 16³ input, 4³ patches (64 tokens), width 16, Llama width 64.
pub(crate) fn tiny_config() -> ModelConfig {
    ModelConfig {
        name: "tiny".into(),
        image_size: [16, 16, 16],
        patch_size: 4,
        embed_dim: 16,
        encoder_depth: 1,
        decoder_depth: 2,
        num_heads: 2,
        mlp_dim: 32,
        dropout: 0.0,
        llm: tiny_llm_config(),
        ..ModelConfig::default()
    }
}

fn variants() -> Vec<ModelConfig> {
    let base = tiny_config();
    let mut paper = base.clone();
    paper.llm.lora_targets = vec!["q".into(), "v".into()];
    paper.pos_embed = PosEmbedPlace::Input;
    let mut linear = base.clone();
    linear.mapper = MapperKind::Linear;
    let mut baseline = base.clone();
    baseline.kind = ModelKind::VitBaseline;
    let mut softmax = base.clone();
    softmax.out_channels = 3;
    softmax.output = OutputKind::Softmax;
    softmax.in_channels = 2;
    // The §4.4.2 swaps: BioGPT with adapters on q and fc1, BERT without.
    let mut biogpt = base.clone();
    biogpt.llm.architecture = LlmArchitecture::Biogpt;
    biogpt.llm.kv_heads = biogpt.llm.heads;
    biogpt.llm.lora_targets = vec!["q".into(), "up".into()];
    let mut bert = biogpt.clone();
    bert.llm.architecture = LlmArchitecture::Bert;
    bert.llm.lora_targets.clear();
    let mut vit_mlp = base.clone();
    vit_mlp.kind = ModelKind::VitMlp;
    vit_mlp.mapper = MapperKind::Linear;
    vec![base, paper, linear, baseline, softmax, biogpt, bert, vit_mlp]
}

#[test]
fn built_networks_have_the_closed_form_parameter_counts() {
    let device = Default::default();
    for config in variants() {
        let model = MedVisionLlama::<B>::new(&config, None, &device);
        let stats = model_stats(&config);
        assert_eq!(model.trainable_params(), stats.trainable_params, "{config:?}");
        assert_eq!(model.frozen_params(), stats.frozen_params, "{config:?}");
    }
}

#[test]
fn patchify_is_raster_order_and_unpatchify_inverts_it() {
    let device = Default::default();
    let (c, n, p) = (2usize, 8usize, 4usize);
    // value(c, z, y, x) = 1000c + 100z + 10y + x, laid out [batch][c][z][y][x].
    let values: Vec<f32> = (0..c * n * n * n)
        .map(|i| {
            let (x, y, z, ch) = (i % n, (i / n) % n, (i / (n * n)) % n, i / (n * n * n));
            (1000 * ch + 100 * z + 10 * y + x) as f32
        })
        .collect();
    let volume = Tensor::<B, 5>::from_data(TensorData::new(values.clone(), [1, c, n, n, n]), &device);
    let tokens = patchify(volume.clone(), p);
    assert_eq!(tokens.dims(), [1, 8, c * p * p * p]);
    let flat = tokens.clone().into_data().to_vec::<f32>().expect("f32");
    // Token (tz, ty, tx) = index (tz·2 + ty)·2 + tx; feature (ch, dz, dy, dx) channel-first.
    for token in 0..8 {
        let (tx, ty, tz) = (token % 2, (token / 2) % 2, token / 4);
        for feature in 0..c * p * p * p {
            let (dx, dy, dz, ch) = (
                feature % p,
                (feature / p) % p,
                (feature / (p * p)) % p,
                feature / (p * p * p),
            );
            let want = (1000 * ch + 100 * (tz * p + dz) + 10 * (ty * p + dy) + tx * p + dx) as f32;
            assert_eq!(flat[token * c * p * p * p + feature], want);
        }
    }
    let back = unpatchify(tokens, 1, c, [2, 2, 2], p)
        .into_data()
        .to_vec::<f32>()
        .expect("f32");
    assert_eq!(back, values);
}

#[test]
fn forward_shapes_and_capture_do_not_change_the_output() {
    let device = Default::default();
    for config in variants() {
        let model = MedVisionLlama::<B>::new(&config, None, &device);
        let input = Tensor::<B, 5>::random(
            [2, config.in_channels, 16, 16, 16],
            burn::tensor::Distribution::Default,
            &device,
        );
        let plain = model.forward(input.clone());
        assert_eq!(plain.dims(), [2, config.out_channels, 16, 16, 16]);
        let request = CaptureRequest {
            features: true,
            attention: Some((1, 1)),
        };
        let (captured_logits, captured) = model.forward_with_capture(input, request);
        let (a, b) = (
            plain.into_data().to_vec::<f32>().expect("f32"),
            captured_logits.into_data().to_vec::<f32>().expect("f32"),
        );
        // Capturing a head takes the written-out attention in that block, the plain pass the
        // backend's fused op: the same values up to float rounding.
        let difference = max_diff(&a, &b);
        assert!(
            difference < 1e-5,
            "capturing changed the prediction by {difference}"
        );
        assert_eq!(captured.encoder.expect("V_E").dims(), [2, 64, 16]);
        assert_eq!(captured.decoder.expect("V_D").dims(), [2, 64, 16]);
        let attention = captured
            .attention
            .expect("attention")
            .into_data()
            .to_vec::<f32>()
            .expect("f32");
        // Every query row of attention weights sums to 1.
        for row in attention.chunks(64) {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-4);
        }
        // ViT-MLP has VD1 and VD2 too, its MLP where the LLM block is.
        if config.has_bridge() {
            assert_eq!(captured.vd1.expect("VD1").dims(), [2, 64, 64]);
            assert_eq!(captured.llm.expect("LLM").dims(), [2, 64, 64]);
            assert_eq!(captured.vd2.expect("VD2").dims(), [2, 64, 16]);
        } else {
            assert!(captured.vd1.is_none() && captured.llm.is_none());
        }
    }
}

/// The LLM block's output on a fixed input, through the inner (non-autodiff) backend.
fn llm_output(model: &MedVisionLlama<A>) -> Vec<f32> {
    let inner = model.valid();
    let block = inner.llm().expect("has an LLM");
    let x = Tensor::<B, 3>::from_data(
        TensorData::new(init::normal_values(4, 5 * 64, 1.0), [1, 5, 64]),
        &Default::default(),
    );
    block.forward(x).into_data().to_vec::<f32>().expect("f32")
}

/// The whole network's output for a fixed input, without autodiff.
fn model_output(model: &MedVisionLlama<A>) -> Vec<f32> {
    let x = Tensor::<B, 5>::from_data(
        TensorData::new(init::normal_values(5, 16 * 16 * 16, 1.0), [1, 1, 16, 16, 16]),
        &Default::default(),
    );
    model.valid().forward(x).into_data().to_vec::<f32>().expect("f32")
}

fn one_adam_step(model: MedVisionLlama<A>) -> (MedVisionLlama<A>, usize) {
    let device = Default::default();
    let input = Tensor::<A, 5>::random([1, 1, 16, 16, 16], burn::tensor::Distribution::Default, &device);
    let loss = model.forward(input).powi_scalar(2).mean();
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    let with_grads = grads.len();
    let mut optimizer = AdamConfig::new().init();
    (optimizer.step(0.1, model, grads), with_grads)
}

#[test]
fn frozen_llama_weights_get_no_gradient_and_never_change() {
    let device = Default::default();
    let model = MedVisionLlama::<A>::new(&tiny_config(), Some(tiny_weights(1).into()), &device);
    let before = llm_output(&model);
    let output_before = model_output(&model);
    let (model, with_grads) = one_adam_step(model);
    // Every trainable parameter tensor got a gradient; no frozen tensor is a parameter at all.
    let mut ids = Vec::new();
    burn::module::list_param_ids(&model)
        .into_iter()
        .for_each(|id| ids.push(id));
    assert_eq!(with_grads, ids.len());
    // The step did train the network (so an unchanged frozen block is not an idle optimiser).
    assert!(
        max_diff(&output_before, &model_output(&model)) > 1e-6,
        "the trainable parameters moved"
    );
    assert_eq!(
        llm_output(&model),
        before,
        "the frozen block is bit-for-bit unchanged"
    );
}

#[test]
fn lora_adapters_inside_the_llama_block_train() {
    let device = Default::default();
    let mut config = tiny_config();
    config.llm.lora_targets = vec!["q".into(), "v".into()];
    let model = MedVisionLlama::<A>::new(&config, Some(tiny_weights(1).into()), &device);
    let before = llm_output(&model);
    let (model, _) = one_adam_step(model);
    let after = llm_output(&model);
    assert!(
        max_diff(&before, &after) > 1e-4,
        "adapters moved the block's output"
    );
}

/// Attention written out by hand (scores, softmax, weighted sum) for one ViT block, to check
/// the fused path against: the block's output with a captured head takes the written-out path.
#[test]
fn fused_attention_gives_the_written_out_attention_within_1e5() {
    let device = Default::default();
    let block = super::vit::VitBlock::<B>::new(16, 2, 32, 0.0, 7, &device);
    let values: Vec<f32> = (0..2 * 64 * 16)
        .map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0)
        .collect();
    let x = Tensor::<B, 3>::from_data(TensorData::new(values, [2, 64, 16]), &device);
    let (fused, none) = block.forward(x.clone(), None);
    let (written_out, captured) = block.forward(x, Some(1));
    assert!(none.is_none() && captured.is_some());
    let difference = max_diff(
        &fused.into_data().to_vec::<f32>().expect("f32"),
        &written_out.into_data().to_vec::<f32>().expect("f32"),
    );
    assert!(
        difference < 1e-5,
        "fused vs written-out attention differ by {difference}"
    );
}

#[test]
fn the_output_prior_makes_an_untrained_network_predict_the_class_balance() {
    let device = Default::default();
    let mut config = tiny_config();
    config.out_channels = 3;
    config.output = OutputKind::Softmax;
    let priors = [0.90, 0.08, 0.02];
    let model = MedVisionLlama::<B>::new(&config, None, &device).with_output_prior(&priors);
    let values: Vec<f32> = (0..2 * 16 * 16 * 16)
        .map(|i| ((i * 13 % 29) as f32 / 14.0) - 1.0)
        .collect();
    let x = Tensor::<B, 5>::from_data(TensorData::new(values, [2, 1, 16, 16, 16]), &device);
    let probabilities = model.probabilities(model.forward(x));
    // Mean probability of each class over every voxel: softmax(ln p) = p exactly when the head's
    // weight is 0; with it scaled by HEAD_WEIGHT_SCALE the mean stays within 0.03 of p.
    let means = probabilities
        .mean_dim(4)
        .mean_dim(3)
        .mean_dim(2)
        .mean_dim(0)
        .into_data()
        .to_vec::<f32>()
        .expect("f32");
    for (mean, prior) in means.iter().zip(priors) {
        assert!((f64::from(*mean) - prior).abs() < 0.03, "{means:?} vs {priors:?}");
    }
    // Sigmoid: bias = logit(p).
    let mut sigmoid = tiny_config();
    sigmoid.out_channels = 1;
    let model = MedVisionLlama::<B>::new(&sigmoid, None, &device).with_output_prior(&[0.1]);
    let values: Vec<f32> = vec![0.5; 16 * 16 * 16];
    let x = Tensor::<B, 5>::from_data(TensorData::new(values, [1, 1, 16, 16, 16]), &device);
    let mean = f64::from(model.probabilities(model.forward(x)).mean().into_scalar());
    assert!((mean - 0.1).abs() < 0.03, "{mean}");
}
