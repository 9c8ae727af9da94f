// What the ops over data sets of D-dimensional points share (the normal mixture, the
// multivariate normal): each argument is a batch of sets (*B) followed by `tail` dims of one
// set (x's (N, D), loc's (K, D) or (D)), the batch dims broadcast.
#pragma once

#include <ATen/ATen.h>

#include <array>
#include <initializer_list>
#include <vector>

#include "autograd.h"

namespace fusedgan {

// An argument of such an op, with the number of its trailing dims that belong to one set.
struct SetArgument {
  const char* name;
  const at::Tensor& tensor;
  int64_t tail;
};

// The broadcast batch shape of the arguments; a batch that does not broadcast is refused with
// a message that names the op and the argument.
std::vector<int64_t> broadcast_batch(const char* op, std::initializer_list<SetArgument> arguments);

// t expanded to the batch with its own trailing `tail` dims, contiguous, in dtype.
at::Tensor laid_out(const at::Tensor& t, const std::vector<int64_t>& batch, int64_t tail, at::ScalarType dtype);

// A gradient computed for the arguments laid out over the batch, back in the shape of the
// argument (summed over the batch dims it broadcast along) and in dtype; undefined stays so.
at::Tensor gradient_for(const at::Tensor& gradient, const at::Tensor& argument, at::ScalarType dtype);

// The forward-mode tangent of the per-set values: the gradients of each set's value
// (backward(ones, the primals each expanded to the batch so that no set's gradient is summed
// with another's, which are wanted)) times the arguments' tangents, summed over each set's
// elements.
template <size_t K, class Backward>
at::Tensor tangent_from_gradients(const std::array<at::Tensor, K>& arguments, const std::array<int64_t, K>& tails,
                                  const std::vector<int64_t>& batch, at::ScalarType dtype, const Backward& backward) {
  std::array<at::Tensor, K> expanded;
  std::array<bool, K> wanted{};
  for (size_t i = 0; i < K; ++i) {
    const at::Tensor primal = primal_of(arguments[i]);
    std::vector<int64_t> shape = batch;
    for (int64_t d = primal.dim() - tails[i]; d < primal.dim(); ++d) shape.push_back(primal.size(d));
    expanded[i] = primal.expand(shape);
    wanted[i] = tangent_of(arguments[i]).defined();
  }
  const at::Tensor ones = at::ones(batch, arguments[0].options().dtype(dtype));
  const std::array<at::Tensor, K> grads = backward(ones, expanded, wanted);
  at::Tensor total = at::zeros(batch, ones.options());
  for (size_t i = 0; i < K; ++i) {
    if (!wanted[i]) continue;
    std::vector<int64_t> within;
    for (int64_t d = 1; d <= tails[i]; ++d) within.push_back(-d);
    total = total + (grads[i] * tangent_of(arguments[i]).expand_as(grads[i])).sum(within);
  }
  return total;
}

}  // namespace fusedgan
