//! The autodiff graph nodes of [`super::fused_ops`]: LayerNorm, RMSNorm, GELU and SwiGLU's gate,
//! each one node whose forward is the inner backend's hook and whose backward calls the inner
//! backend's gradient hook ([`EngineBackend::layer_norm_backward`], …). [`EngineBackend`]'s
//! implementation for [`Autodiff`] (attention.rs) delegates here.

use super::attention::EngineBackend;
use burn::backend::Autodiff;
use burn::tensor::ops::FloatTensor;
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::checkpoint::strategy::CheckpointStrategy;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, OpsKind};

/// [`EngineBackend::layer_norm_node`] under autodiff: the inner backend's forward, one node.
pub(super) fn layer_norm<B: EngineBackend, C: CheckpointStrategy>(
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
pub(super) fn rms_norm<B: EngineBackend, C: CheckpointStrategy>(
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
pub(super) fn gelu<B: EngineBackend, C: CheckpointStrategy>(
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
pub(super) fn swiglu<B: EngineBackend, C: CheckpointStrategy>(
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
