#include "autograd.h"

#include <torch/csrc/autograd/functions/utils.h>

namespace fusedgan {

void set_tangent(const at::Tensor& output, const at::Tensor& tangent) {
  output._set_fw_grad(tangent.to(output.scalar_type()), /*level=*/0, /*is_inplace_op=*/false);
}

void check_first_order(bool differentiated, const std::string& op, const char* differentiable_op, const char* what) {
  TORCH_CHECK(!differentiated, op, " is not differentiable; call ", differentiable_op, " for a differentiable ", what);
}

bool transformed(const at::Tensor& t) {
  return t.key_set().has_any(
      c10::DispatchKeySet({c10::DispatchKey::FuncTorchGradWrapper, c10::DispatchKey::FuncTorchBatched}));
}

namespace {

// A plain float32/float64 CPU tensor holding 1, read directly (item() would cost a
// dispatch). Tensors being traced (fake, functional, functorch wrappers) are never read:
// they get the multiplication, which tracing records.
bool is_plain_cpu_one(const at::Tensor& t) {
  const auto traced = c10::DispatchKeySet({c10::DispatchKey::Python, c10::DispatchKey::Functionalize});
  if (!t.is_cpu() || transformed(t) || t.key_set().has_any(traced) || t.numel() != 1 || t.is_conj() || t.is_neg()) {
    return false;
  }
  if (t.scalar_type() == at::kFloat) return *t.const_data_ptr<float>() == 1.0f;
  if (t.scalar_type() == at::kDouble) return *t.const_data_ptr<double>() == 1.0;
  return false;
}

}  // namespace

at::Tensor scale_forward_grad(at::Tensor grad, const at::Tensor& grad_output, std::optional<int64_t> reduced_dim) {
  if (is_plain_cpu_one(grad_output)) return grad;
  if (reduced_dim) {
    grad.mul_(grad_output.unsqueeze(*reduced_dim));
  } else if (grad_output.numel() == 1 || grad_output.numel() == grad.numel()) {
    grad.mul_(grad_output.numel() == 1 ? grad_output : grad_output.reshape(grad.sizes()));
  } else {  // one per leading index of grad: trailing dims of 1 broadcast it
    std::vector<int64_t> shape(grad_output.sizes().begin(), grad_output.sizes().end());
    shape.resize(grad.dim(), 1);
    grad.mul_(grad_output.reshape(shape));
  }
  return grad;
}

torch::autograd::variable_list LossNode::apply(torch::autograd::variable_list&& grads) {
  const at::Tensor& grad = grads[0];
  if (!grad.defined()) return torch::autograd::variable_list(num_outputs());  // a zero gradient
  if (!at::GradMode::is_enabled() && !kept.empty() && !tangent_of(grad).defined()) {
    for (auto& s : saved) s.unpack(getptr());  // raises if an input was modified in place since
    torch::autograd::variable_list result = std::move(kept);  // ours alone now: scaled in place
    kept.clear();
    for (auto& g : result) {
      if (g.defined()) g = scale_forward_grad(g, grad, reduced_dim);
    }
    return result;
  }
  torch::autograd::variable_list unpacked;
  for (auto& s : saved) unpacked.push_back(s.unpack(getptr()));
  std::vector<bool> wanted(num_outputs());
  for (size_t i = 0; i < wanted.size(); ++i) wanted[i] = should_compute_output(i);
  return recompute(unpacked, grad, wanted);
}

void LossNode::release_variables() {
  saved.clear();
  kept.clear();
}

namespace {
// Nodes are held by intrusive_ptr in current torch and by shared_ptr in older releases.
template <class N>
auto make_node() {
  using Pointer = decltype(torch::autograd::Edge::function);
  if constexpr (std::is_same_v<Pointer, std::shared_ptr<torch::autograd::Node>>) {
    return std::make_shared<N>();
  } else {
    return c10::make_intrusive<N>();
  }
}
}  // namespace

void record_backward(const at::Tensor& output, const char* name, const torch::autograd::variable_list& inputs,
                       std::vector<at::Tensor> kept, const torch::autograd::variable_list& to_save,
                       LossNode::Recompute recompute, std::optional<int64_t> reduced_dim) {
  auto node = make_node<LossNode>();
  node->node_name = name;
  node->set_next_edges(torch::autograd::collect_next_edges(inputs));
  node->kept = std::move(kept);
  node->reduced_dim = reduced_dim;
  for (const auto& t : to_save) node->saved.emplace_back(t, /*is_output=*/false);
  node->recompute = std::move(recompute);
  torch::autograd::set_history(output, node);
}

}  // namespace fusedgan
