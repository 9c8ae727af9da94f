// What the ops' C++ autograd functions share.
//
// Gradients computed in the forward pass. A reduced loss (mean or sum) can give its input
// gradient at grad = 1 in the same pass as its value, sharing the exp/log work; the
// backward then only scales it by the incoming gradient, or returns it as it is when that
// is 1, as for loss.backward(). The gradient is kept in the autograd context and taken by
// the first backward; a second one (retain_graph) or a differentiable one (create_graph)
// computes the gradient again from the saved inputs.
#pragma once

#include <torch/csrc/autograd/custom_function.h>

#include <optional>
#include <vector>

namespace fusedgan {

void keep_forward_grad(torch::autograd::AutogradContext* ctx, const char* name, const at::Tensor& grad);

// The gradient kept under `name` times grad_output (one element), or nothing.
std::optional<at::Tensor> take_forward_grad(torch::autograd::AutogradContext* ctx, const char* name,
                                            const at::Tensor& grad_output);

// A freshly computed gradient at grad = 1 (ours alone) times grad_output, in place, with the
// same bits as take_forward_grad gives: a repeated backward matches the first exactly.
at::Tensor scale_forward_grad(at::Tensor grad, const at::Tensor& grad_output);

// For create_graph: the gradients of `objective` (a differentiable function of the inputs,
// written in ATen ops) with respect to the inputs that `wanted` marks, keeping the graph so
// that they can be differentiated again; zeros where an input does not reach it, undefined
// where not wanted.
torch::autograd::variable_list differentiable_gradients(const at::Tensor& objective,
                                                        const torch::autograd::variable_list& inputs,
                                                        const std::vector<bool>& wanted);

}  // namespace fusedgan
