// What the ops' autograd shares: one kind of backward node for every op.
//
// Each differentiable op has a _backward op (or, for the GAN costs, an _and_grad op) that
// computes its gradients with the kernels. The forward's autograd kernel records a LossNode
// whose backward calls it through the dispatcher. When a graph must be recorded (create_graph,
// double backward), the gradients are computed in ATen ops instead, which autograd
// differentiates again: csrc/math's derivative formulas on tensors (tensor_math.h), or for the
// mixture the same formulas written in ATen ops over whole tensors.
//
// Gradients computed in the forward pass: a reduced loss (mean or sum) can give its input
// gradient at grad = 1 in the same pass as its value, sharing the exp/log work, and a
// log-likelihood its per-data-set parameters' gradients, reading the data once; the node
// keeps it and its first backward only scales it by the incoming gradient, or hands it on as
// it is when that is 1, as for loss.backward(). A second backward (retain_graph), a
// differentiable one, or one whose incoming gradient has a tangent computes the gradients
// again from the saved inputs.
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

// ---- forward-mode AD (torch.autograd.forward_ad, torch.func.jvp and jacfwd): an op's
// autograd kernel computes its output's tangent from its inputs' tangents at level 0, as
// torch's own kernels do, from the primals (the values without their tangents).

inline at::Tensor tangent_of(const at::Tensor& t) { return t.defined() ? t._fw_grad(/*level=*/0) : at::Tensor(); }
inline at::Tensor tangent_of(const std::optional<at::Tensor>& t) { return t ? tangent_of(*t) : at::Tensor(); }
inline at::Tensor primal_of(const at::Tensor& t) { return tangent_of(t).defined() ? t._fw_primal(/*level=*/0) : t; }
inline std::optional<at::Tensor> primal_of(const std::optional<at::Tensor>& t) {
  return t ? std::optional<at::Tensor>(primal_of(*t)) : std::nullopt;
}
template <class... Inputs>
bool has_tangents(const Inputs&... inputs) {
  return (tangent_of(inputs).defined() || ...);
}

// An _and_grad op is the first-order pass of another op's autograd (`differentiable_op`, a
// `what`): it refuses a call that would need its own derivative (differentiated: an input
// requires grad or carries a tangent).
void check_first_order(bool differentiated, const std::string& op, const char* differentiable_op, const char* what);

// Gives output its tangent, in output's dtype.
void set_tangent(const at::Tensor& output, const at::Tensor& tangent);

// Whether a torch.func transform (grad, vmap, jvp) wraps t: gradients kept from the forward
// pass would be computed for nothing there, since those transforms differentiate with
// create_graph.
bool transformed(const at::Tensor& t);

// A gradient at grad = 1 (ours alone) times grad_output, in place, or as it is when
// grad_output is a plain 1; a repeated backward that recomputes the gradient and scales it
// here gets the same bits as the first. grad_output holds one value for all of grad (a
// reduced loss), one per element of grad in the same order (the gradient of a parameter with
// one value per data set, of the per-set log-likelihoods), one per leading index of grad (a
// parameter with a vector or matrix per data set: the multivariate normal's), or, with
// reduced_dim, one per slice of grad along that dim (an entropy of rows along it).
at::Tensor scale_forward_grad(at::Tensor grad, const at::Tensor& grad_output,
                              std::optional<int64_t> reduced_dim = std::nullopt);

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
  std::optional<int64_t> reduced_dim;  // of the kept gradients, where the output reduced one away
  std::vector<torch::autograd::SavedVariable> saved;
  Recompute recompute;

  torch::autograd::variable_list apply(torch::autograd::variable_list&& grads) override;
  void release_variables() override;
  std::string name() const override { return node_name; }
};

// Records `output` as computed from `inputs` by a new LossNode named `name` (as grad_fn shows
// it), keeping `kept` (see scale_forward_grad for reduced_dim) and saving `to_save`
// (undefined tensors allowed) for `recompute`.
void record_backward(const at::Tensor& output, const char* name, const torch::autograd::variable_list& inputs,
                     std::vector<at::Tensor> kept, const torch::autograd::variable_list& to_save,
                     LossNode::Recompute recompute, std::optional<int64_t> reduced_dim = std::nullopt);

}  // namespace fusedgan
