#include "autograd_support.h"

#include <torch/csrc/autograd/autograd.h>

namespace fusedgan {
namespace {

// A plain float32/float64 CPU tensor holding 1, read directly (item() would cost a
// dispatch). Tensors being traced (fake, functional, functorch wrappers) are never read:
// they get the multiplication, which tracing records.
bool is_plain_cpu_one(const at::Tensor& t) {
  const auto traced = c10::DispatchKeySet({c10::DispatchKey::Python, c10::DispatchKey::Functionalize,
                                           c10::DispatchKey::FuncTorchGradWrapper,
                                           c10::DispatchKey::FuncTorchBatched});
  if (!t.is_cpu() || t.key_set().has_any(traced) || t.numel() != 1 || t.is_conj() || t.is_neg()) return false;
  if (t.scalar_type() == at::kFloat) return *t.const_data_ptr<float>() == 1.0f;
  if (t.scalar_type() == at::kDouble) return *t.const_data_ptr<double>() == 1.0;
  return false;
}

}  // namespace

void keep_forward_grad(torch::autograd::AutogradContext* ctx, const char* name, const at::Tensor& grad) {
  ctx->saved_data[name] = grad;
}

std::optional<at::Tensor> take_forward_grad(torch::autograd::AutogradContext* ctx, const char* name,
                                            const at::Tensor& grad_output) {
  const auto kept = ctx->saved_data.find(name);
  if (kept == ctx->saved_data.end() || at::GradMode::is_enabled()) return std::nullopt;
  at::Tensor grad = kept->second.toTensor();
  ctx->saved_data.erase(kept);  // now ours alone: safe to scale in place, and autograd may keep it as .grad
  return scale_forward_grad(grad, grad_output);
}

at::Tensor scale_forward_grad(at::Tensor grad, const at::Tensor& grad_output) {
  if (!is_plain_cpu_one(grad_output)) grad.mul_(grad_output);
  return grad;
}

torch::autograd::variable_list differentiable_gradients(const at::Tensor& objective,
                                                        const torch::autograd::variable_list& inputs,
                                                        const std::vector<bool>& wanted) {
  torch::autograd::variable_list chosen, results(inputs.size());
  std::vector<size_t> slots;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (wanted[i]) {
      chosen.push_back(inputs[i]);
      slots.push_back(i);
    }
  }
  const auto d = torch::autograd::grad({objective}, chosen, {}, /*retain_graph=*/true, /*create_graph=*/true,
                                       /*allow_unused=*/true);
  for (size_t k = 0; k < slots.size(); ++k) results[slots[k]] = d[k].defined() ? d[k] : at::zeros_like(chosen[k]);
  return results;
}

}  // namespace fusedgan
