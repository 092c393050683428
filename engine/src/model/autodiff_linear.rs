//! [`EngineBackend::linear_node`] under burn's [`Autodiff`]: the inner backend's forward and one
//! graph node whose backward is the inner backend's [`EngineBackend::linear_backward`] (burn's own
//! linear node calls the backend's `linear_*_backward` ops, which a backend extension cannot
//! replace). The node keeps x only when the weight needs a gradient and the weight only when x
//! does, as burn's node does.

use super::attention::EngineBackend;
use burn::backend::Autodiff;
use burn::tensor::ops::FloatTensor;
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::checkpoint::strategy::CheckpointStrategy;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, OpsKind};

/// [`EngineBackend::linear_node`] under autodiff. Without a bias the node's third parent is the
/// input again, which gets nothing from that slot.
pub(super) fn linear<B: EngineBackend, C: CheckpointStrategy>(
    x: FloatTensor<Autodiff<B, C>>,
    weight: FloatTensor<Autodiff<B, C>>,
    bias: Option<FloatTensor<Autodiff<B, C>>>,
) -> FloatTensor<Autodiff<B, C>> {
    let has_bias = bias.is_some();
    let third_parent = bias.as_ref().map_or_else(|| x.node.clone(), |b| b.node.clone());
    let inner_bias = bias.map(|b| b.primitive);
    let (x_tracked, weight_tracked) = (x.is_tracked(), weight.is_tracked());
    match (LinearBackward { has_bias })
        .prepare::<C>([x.node.clone(), weight.node.clone(), third_parent])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let output = B::linear_node(x.primitive.clone(), weight.primitive.clone(), inner_bias);
            let state = LinearState {
                x: weight_tracked.then_some(x.primitive),
                weight: x_tracked.then_some(weight.primitive),
            };
            prep.finish(state, output)
        }
        OpsKind::UnTracked(prep) => prep.finish(B::linear_node(x.primitive, weight.primitive, inner_bias)),
    }
}

/// What the backward pass needs: x for the weight's gradient, the weight for x's.
#[derive(Debug, Clone)]
struct LinearState<B: EngineBackend> {
    x: Option<FloatTensor<B>>,
    weight: Option<FloatTensor<B>>,
}

/// The graph node of [`EngineBackend::linear_node`] under autodiff.
#[derive(Debug)]
struct LinearBackward {
    has_bias: bool,
}

impl<B: EngineBackend> Backward<B, 3> for LinearBackward {
    type State = LinearState<B>;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let [node_x, node_weight, node_bias] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let LinearState { x, weight } = ops.state;
        // Only what a tracked parent will receive is computed.
        let weight = weight.filter(|_| node_x.is_some());
        let x = x.filter(|_| node_weight.is_some());
        let bias_grad = self.has_bias && node_bias.is_some();
        let (grad_x, grad_weight, grad_bias) = B::linear_backward(x, weight, grad, bias_grad);
        for (node, grad) in [(node_x, grad_x), (node_weight, grad_weight)] {
            if let (Some(node), Some(grad)) = (node, grad) {
                grads.register::<B>(node.id, grad);
            }
        }
        if let (true, Some(node), Some(grad)) = (self.has_bias, node_bias, grad_bias) {
            grads.register::<B>(node.id, grad);
        }
    }
}
