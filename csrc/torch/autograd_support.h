// What the ops' autograd shares.
//
// Gradients computed in the forward pass. A reduced loss (mean or sum) can give its input
// gradient at grad = 1 in the same pass as its value, sharing the exp/log work; the
// backward then only scales it by the incoming gradient, or returns it as it is when that
// is 1, as for loss.backward(). The gradients are kept in the loss's backward node (a
// KeptGradNode, cheaper per call than torch::autograd::Function's: n=128 BCE forward +
// backward 28.6 -> 21.4 us) and taken by the first backward; a second one (retain_graph)
// or a differentiable one (create_graph) computes them again from the saved inputs.
#pragma once

#include <torch/csrc/autograd/custom_function.h>
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

// The backward node of a loss. Its first backward hands on the kept gradients (scaled by
// the incoming one) where the forward computed them; otherwise, and for a later or
// differentiable backward, it calls `recompute` with the saved tensors and the incoming
// gradient. `kept` (empty, or one per next edge) and `recompute` give one gradient per next
// edge.
struct KeptGradNode : torch::autograd::Node {
  using Recompute = std::function<torch::autograd::variable_list(const torch::autograd::variable_list& saved,
                                                                 const at::Tensor& grad)>;
  const char* node_name = "KeptGradNode";
  std::vector<at::Tensor> kept;
  std::vector<torch::autograd::SavedVariable> saved;
  Recompute recompute;

  torch::autograd::variable_list apply(torch::autograd::variable_list&& grads) override;
  void release_variables() override;
  std::string name() const override { return node_name; }
};

// Records `output` as computed from `inputs` by a new KeptGradNode.
void record_kept_grads(const at::Tensor& output, const char* name, const torch::autograd::variable_list& inputs,
                       std::vector<at::Tensor> kept, const torch::autograd::variable_list& to_save,
                       KeptGradNode::Recompute recompute);

// For create_graph: the gradients of `objective` (a differentiable function of the inputs,
// written in ATen ops) with respect to the inputs that `wanted` marks, keeping the graph so
// that they can be differentiated again; zeros where an input does not reach it, undefined
// where not wanted.
torch::autograd::variable_list differentiable_gradients(const at::Tensor& objective,
                                                        const torch::autograd::variable_list& inputs,
                                                        const std::vector<bool>& wanted);

}  // namespace fusedgan
