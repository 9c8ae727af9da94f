// What the ops' autograd shares: one kind of backward node for every op.
//
// Each differentiable op has a _backward op (or, for the GAN costs, an _and_grad op) that
// computes its gradients with the kernels. The forward's autograd kernel records a LossNode
// whose backward calls it through the dispatcher. When a graph must be recorded (create_graph,
// double backward), the gradients are computed in ATen ops instead, which autograd
// differentiates again: csrc/math's derivative formulas on tensors (tensor_math.h), or for the
// mixture its reference in ATen ops.
//
// Gradients computed in the forward pass: a reduced loss (mean or sum) can give its input
// gradient at grad = 1 in the same pass as its value, sharing the exp/log work; the node
// keeps it and its first backward only scales it by the incoming gradient, or hands it on as
// it is when that is 1, as for loss.backward(). A second backward (retain_graph) or a
// differentiable one computes the gradients again from the saved inputs.
#pragma once

#include <torch/csrc/autograd/function.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace fusedgan {

// Whether autograd must record a call on these inputs (tensors or optional tensors): grad
// mode is on and one of them requires grad.
inline bool input_requires_grad(const at::Tensor& t) { return t.requires_grad(); }
inline bool input_requires_grad(const std::optional<at::Tensor>& t) { return t && t->requires_grad(); }
template <class... Inputs>
bool records_grad(const Inputs&... inputs) {
  return at::GradMode::is_enabled() && (input_requires_grad(inputs) || ...);
}

// A gradient at grad = 1 (ours alone) times grad_output, in place, or as it is when
// grad_output is a plain 1; a repeated backward that recomputes the gradient and scales it
// here gets the same bits as the first.
at::Tensor scale_forward_grad(at::Tensor grad, const at::Tensor& grad_output);

// An op's backward node. Its first backward hands on the kept gradients (scaled by the
// incoming one) where the forward computed them; otherwise, and for a later or differentiable
// backward, it calls `recompute` with the saved tensors, the incoming gradient and which of
// the node's inputs need a gradient. `kept` (empty, or one per input) and `recompute` give one
// gradient per input (undefined where not needed).
struct LossNode : torch::autograd::Node {
  using Recompute = std::function<torch::autograd::variable_list(
      const torch::autograd::variable_list& saved, const at::Tensor& grad, const std::vector<bool>& wanted)>;
  const char* node_name = "LossNode";
  std::vector<at::Tensor> kept;
  std::vector<torch::autograd::SavedVariable> saved;
  Recompute recompute;

  torch::autograd::variable_list apply(torch::autograd::variable_list&& grads) override;
  void release_variables() override;
  std::string name() const override { return node_name; }
};

// Records `output` as computed from `inputs` by a new LossNode named `name` (as grad_fn shows
// it), keeping `kept` and saving `to_save` (undefined tensors allowed) for `recompute`.
void record_backward(const at::Tensor& output, const char* name, const torch::autograd::variable_list& inputs,
                     std::vector<at::Tensor> kept, const torch::autograd::variable_list& to_save,
                     LossNode::Recompute recompute);

// For create_graph through a reference written in ATen ops (the mixture's): the gradients of
// `objective` with respect to the inputs that `wanted` marks, keeping the graph so that they
// can be differentiated again; zeros where an input does not reach it, undefined where not
// wanted.
torch::autograd::variable_list differentiable_gradients(const at::Tensor& objective,
                                                        const torch::autograd::variable_list& inputs,
                                                        const std::vector<bool>& wanted);

}  // namespace fusedgan
