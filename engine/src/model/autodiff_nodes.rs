//! [`EngineBackend`] for burn's [`Autodiff`]: every engine op as one node of the autodiff graph.
//!
//! - attention: the forward is the inner backend's, the node keeps q, k, v and the output, and
//!   the backward recomputes the scores block by block ([`attention_backward`], attention.rs);
//!   a backend that keeps small attention weights (the CPU) computes them once in forward and
//!   keeps them when they fit in one block;
//! - the fused training loss: its gradient, computed with the loss, is attached to each
//!   channel's logits by a node that hands it back;
//! - linear layers: [`super::autodiff_linear`];
//! - LayerNorm, RMSNorm, GELU and SwiGLU's gate ([`super::fused_ops`]): the inner backend's
//!   forward, a node that keeps the inputs, and the inner backend's gradient hook in backward.

use super::attention::{
    DropoutMask, EngineBackend, FusedLoss, LossInputs, attention_backward, attention_keeping_weights,
    block_rows_of, fits_one_block, float,
};
use super::fused_loss::LossSpec;
use burn::backend::Autodiff;
use burn::tensor::backend::Backend;
use burn::tensor::ops::FloatTensor;
use burn::tensor::{ElementConversion, Tensor, TensorData, TensorPrimitive};
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::checkpoint::strategy::CheckpointStrategy;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, OpsKind};

impl<B: EngineBackend, C: CheckpointStrategy> EngineBackend for Autodiff<B, C> {
    fn scaled_dot_product_attention(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        dropout: Option<DropoutMask<Self>>,
    ) -> FloatTensor<Self> {
        let dropout = dropout.map(|d| DropoutMask::<B> {
            keep: d.keep,
            seed: d.seed,
        });
        let forward = |q, k, v, dropout| B::scaled_dot_product_attention(q, k, v, dropout);
        match AttentionBackward
            .prepare::<C>([q.node.clone(), k.node.clone(), v.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (inner_q, inner_k) = (float::<B>(q.primitive.clone()), float::<B>(k.primitive.clone()));
                let (output, weights) =
                    match B::KEEPS_SMALL_ATTENTION_WEIGHTS && fits_one_block(&inner_q, &inner_k) {
                        true => {
                            let (output, weights) = attention_keeping_weights::<B>(
                                inner_q,
                                inner_k,
                                float(v.primitive.clone()),
                                dropout.as_ref(),
                            );
                            (
                                output.into_primitive().tensor(),
                                Some(weights.into_primitive().tensor()),
                            )
                        }
                        false => (
                            forward(
                                q.primitive.clone(),
                                k.primitive.clone(),
                                v.primitive.clone(),
                                dropout.clone(),
                            ),
                            None,
                        ),
                    };
                let state = AttentionState {
                    q: q.primitive,
                    k: k.primitive,
                    v: v.primitive,
                    output: output.clone(),
                    dropout,
                    weights,
                };
                prep.finish(state, output)
            }
            OpsKind::UnTracked(prep) => prep.finish(forward(q.primitive, k.primitive, v.primitive, dropout)),
        }
    }

    fn linear_node(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: Option<FloatTensor<Self>>,
    ) -> FloatTensor<Self> {
        super::autodiff_linear::linear::<B, C>(x, weight, bias)
    }

    fn layer_norm_node(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        eps: f64,
    ) -> FloatTensor<Self> {
        layer_norm::<B, C>(x, gamma, beta, eps)
    }

    fn swiglu_node(gate: FloatTensor<Self>, up: FloatTensor<Self>) -> FloatTensor<Self> {
        swiglu::<B, C>(gate, up)
    }

    fn gelu_node(x: FloatTensor<Self>) -> FloatTensor<Self> {
        gelu::<B, C>(x)
    }

    fn rms_norm_node(x: FloatTensor<Self>, weight: Option<FloatTensor<Self>>, eps: f64) -> FloatTensor<Self> {
        rms_norm::<B, C>(x, weight, eps)
    }

    /// The inner backend's fused loss with its gradient, attached to each channel's logits by a
    /// node that hands the precomputed gradient back (times the loss's own gradient).
    fn fused_segmentation_loss(
        logits: Vec<FloatTensor<Self>>,
        targets: Vec<FloatTensor<Self>>,
        spec: LossSpec,
    ) -> Result<FusedLoss<Self>, LossInputs<Self>> {
        let inner_logits = logits.iter().map(|l| l.primitive.clone()).collect();
        let inner_targets = targets.iter().map(|t| t.primitive.clone()).collect();
        let spec = LossSpec {
            gradient: true,
            ..spec
        };
        let Ok(FusedLoss {
            loss,
            gradients: Some(gradients),
        }) = B::fused_segmentation_loss(inner_logits, inner_targets, spec)
        else {
            return Err((logits, targets));
        };
        let device = B::float_device(&loss);
        let mut total: Option<Tensor<Self, 1>> = None;
        for (channel, (logit, gradient)) in logits.into_iter().zip(gradients).enumerate() {
            // The loss is carried by channel 0's node; the others add 0 and route a gradient.
            let value = match channel {
                0 => loss.clone(),
                _ => B::float_from_data(TensorData::new(vec![0.0_f32], [1]), &device),
            };
            let out = match PrecomputedGradient
                .prepare::<C>([logit.node.clone()])
                .compute_bound()
                .stateful()
            {
                OpsKind::Tracked(prep) => prep.finish(gradient, value),
                OpsKind::UnTracked(prep) => prep.finish(value),
            };
            let out = Tensor::<Self, 1>::from_primitive(TensorPrimitive::Float(out));
            total = Some(match total {
                None => out,
                Some(sum) => sum + out,
            });
        }
        match total {
            Some(loss) => Ok(FusedLoss {
                loss: loss.into_primitive().tensor(),
                gradients: None,
            }),
            None => Err((Vec::new(), targets)),
        }
    }
}

/// The graph node of a fused loss for one channel's logits: its state is that channel's
/// gradient, computed with the loss, scaled in backward by the gradient arriving at the loss.
#[derive(Debug)]
struct PrecomputedGradient;

impl<B: Backend> Backward<B, 1> for PrecomputedGradient {
    type State = FloatTensor<B>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let [node] = ops.parents;
        let upstream = grads.consume::<B>(&ops.node);
        let Some(node) = node else { return };
        let scale = f64::from(
            Tensor::<B, 1>::from_primitive(TensorPrimitive::Float(upstream))
                .into_scalar()
                .elem::<f32>(),
        );
        let gradient = match scale == 1.0 {
            true => ops.state,
            false => Tensor::<B, 3>::from_primitive(TensorPrimitive::Float(ops.state))
                .mul_scalar(scale)
                .into_primitive()
                .tensor(),
        };
        grads.register::<B>(node.id, gradient);
    }
}

/// What the backward pass needs: the inputs and the output (O(N) values each), and the
/// weights only when they fit in one block of scores
/// ([`EngineBackend::KEEPS_SMALL_ATTENTION_WEIGHTS`]).
#[derive(Debug, Clone)]
struct AttentionState<B: Backend> {
    q: FloatTensor<B>,
    k: FloatTensor<B>,
    v: FloatTensor<B>,
    output: FloatTensor<B>,
    dropout: Option<DropoutMask<B>>,
    weights: Option<FloatTensor<B>>,
}

/// The graph node of [`EngineBackend::scaled_dot_product_attention`] under autodiff.
#[derive(Debug)]
struct AttentionBackward;

impl<B: EngineBackend> Backward<B, 3> for AttentionBackward {
    type State = AttentionState<B>;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let [node_q, node_k, node_v] = ops.parents;
        let grad_output = grads.consume::<B>(&ops.node);
        let state = ops.state;
        let q = float::<B>(state.q);
        let k = float::<B>(state.k);
        let block_rows = block_rows_of(&q, &k);
        let (grad_q, grad_k, grad_v) = attention_backward::<B>(
            q,
            k,
            float(state.v),
            float(state.output),
            float(grad_output),
            state.dropout.as_ref(),
            block_rows,
            state.weights.map(float::<B>),
        );
        for (node, grad) in [(node_q, grad_q), (node_k, grad_k), (node_v, grad_v)] {
            if let Some(node) = node {
                grads.register::<B>(node.id, grad.into_primitive().tensor());
            }
        }
    }
}

/// [`EngineBackend::layer_norm_node`] under autodiff: the inner backend's forward, one node.
fn layer_norm<B: EngineBackend, C: CheckpointStrategy>(
    x: FloatTensor<Autodiff<B, C>>,
    gamma: FloatTensor<Autodiff<B, C>>,
    beta: FloatTensor<Autodiff<B, C>>,
    eps: f64,
) -> FloatTensor<Autodiff<B, C>> {
    match (LayerNormBackward { eps })
        .prepare::<C>([x.node.clone(), gamma.node.clone(), beta.node.clone()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let output =
                B::layer_norm_node(x.primitive.clone(), gamma.primitive.clone(), beta.primitive, eps);
            prep.finish((x.primitive, gamma.primitive), output)
        }
        OpsKind::UnTracked(prep) => prep.finish(B::layer_norm_node(
            x.primitive,
            gamma.primitive,
            beta.primitive,
            eps,
        )),
    }
}

/// [`EngineBackend::rms_norm_node`] under autodiff: the inner backend's forward, one node. Without
/// a weight the node's second parent is the input again, which gets nothing from that slot.
fn rms_norm<B: EngineBackend, C: CheckpointStrategy>(
    x: FloatTensor<Autodiff<B, C>>,
    weight: Option<FloatTensor<Autodiff<B, C>>>,
    eps: f64,
) -> FloatTensor<Autodiff<B, C>> {
    let inner_weight = weight.as_ref().map(|w| w.primitive.clone());
    match weight {
        Some(weight) => match (RmsNormBackward { eps })
            .prepare::<C>([x.node.clone(), weight.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let output = B::rms_norm_node(x.primitive.clone(), inner_weight.clone(), eps);
                prep.finish((x.primitive, inner_weight), output)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::rms_norm_node(x.primitive, inner_weight, eps)),
        },
        None => match (RmsNormBackward { eps })
            .prepare::<C>([x.node.clone(), x.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let output = B::rms_norm_node(x.primitive.clone(), None, eps);
                prep.finish((x.primitive, None), output)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::rms_norm_node(x.primitive, None, eps)),
        },
    }
}

/// [`EngineBackend::gelu_node`] under autodiff: the inner backend's forward, one node.
fn gelu<B: EngineBackend, C: CheckpointStrategy>(
    x: FloatTensor<Autodiff<B, C>>,
) -> FloatTensor<Autodiff<B, C>> {
    match GeluBackward
        .prepare::<C>([x.node.clone()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let output = B::gelu_node(x.primitive.clone());
            prep.finish(x.primitive, output)
        }
        OpsKind::UnTracked(prep) => prep.finish(B::gelu_node(x.primitive)),
    }
}

/// [`EngineBackend::swiglu_node`] under autodiff: the inner backend's forward, one node.
fn swiglu<B: EngineBackend, C: CheckpointStrategy>(
    gate: FloatTensor<Autodiff<B, C>>,
    up: FloatTensor<Autodiff<B, C>>,
) -> FloatTensor<Autodiff<B, C>> {
    match SwigluBackward
        .prepare::<C>([gate.node.clone(), up.node.clone()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let output = B::swiglu_node(gate.primitive.clone(), up.primitive.clone());
            prep.finish((gate.primitive, up.primitive), output)
        }
        OpsKind::UnTracked(prep) => prep.finish(B::swiglu_node(gate.primitive, up.primitive)),
    }
}

/// The graph node of [`EngineBackend::swiglu_node`] under autodiff; its state is both inputs.
#[derive(Debug)]
struct SwigluBackward;

impl<B: EngineBackend> Backward<B, 2> for SwigluBackward {
    type State = (FloatTensor<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let [node_gate, node_up] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (gate, up) = ops.state;
        let (grad_gate, grad_up) = B::swiglu_grad(gate, up, grad);
        for (node, grad) in [(node_gate, grad_gate), (node_up, grad_up)] {
            if let Some(node) = node {
                grads.register::<B>(node.id, grad);
            }
        }
    }
}

/// The graph node of [`EngineBackend::gelu_node`] under autodiff; its state is the input.
#[derive(Debug)]
struct GeluBackward;

impl<B: EngineBackend> Backward<B, 1> for GeluBackward {
    type State = FloatTensor<B>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let [node] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        if let Some(node) = node {
            grads.register::<B>(node.id, B::gelu_grad(ops.state, grad));
        }
    }
}

/// The graph node of [`EngineBackend::layer_norm_node`] under autodiff; its state is the input
/// and the weight (the bias does not enter the gradients).
#[derive(Debug)]
struct LayerNormBackward {
    eps: f64,
}

impl<B: EngineBackend> Backward<B, 3> for LayerNormBackward {
    type State = (FloatTensor<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x, gamma) = ops.state;
        let (dx, dgamma, dbeta) = B::layer_norm_backward(x, gamma, grad, self.eps);
        for (node, grad) in [(node_x, dx), (node_gamma, dgamma), (node_beta, dbeta)] {
            if let Some(node) = node {
                grads.register::<B>(node.id, grad);
            }
        }
    }
}

/// The graph node of [`EngineBackend::rms_norm_node`] under autodiff; its state is the input and
/// the weight (None without one, when the second parent is the input again and gets nothing from
/// this slot).
#[derive(Debug)]
struct RmsNormBackward {
    eps: f64,
}

impl<B: EngineBackend> Backward<B, 2> for RmsNormBackward {
    type State = (FloatTensor<B>, Option<FloatTensor<B>>);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let [node_x, node_weight] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x, weight) = ops.state;
        let (dx, dweight) = B::rms_norm_backward(x, weight, grad, self.eps);
        if let Some(node) = node_x {
            grads.register::<B>(node.id, dx);
        }
        if let (Some(node), Some(dweight)) = (node_weight, dweight) {
            grads.register::<B>(node.id, dweight);
        }
    }
}
