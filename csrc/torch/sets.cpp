#include "sets.h"

#include <algorithm>
#include <utility>

#include "layout.h"

namespace fusedgan {

std::vector<int64_t> broadcast_batch(const char* op, std::initializer_list<SetArgument> arguments) {
  std::vector<int64_t> batch;
  for (const SetArgument& argument : arguments) {
    const at::IntArrayRef own = argument.tensor.sizes().slice(0, argument.tensor.dim() - argument.tail);
    // aligned from the right, as torch broadcasts
    std::vector<int64_t> wider(std::max(batch.size(), own.size()), 1);
    for (size_t i = 0; i < wider.size(); ++i) {
      const int64_t a = i < batch.size() ? batch[batch.size() - 1 - i] : 1;
      const int64_t b = i < own.size() ? own[own.size() - 1 - i] : 1;
      TORCH_CHECK_VALUE(a == b || a == 1 || b == 1, op, ": the batch dims of ", argument.name, " ", own,
                        " do not broadcast with the others' ", at::IntArrayRef(batch), " (got shape ",
                        argument.tensor.sizes(), ")");
      wider[wider.size() - 1 - i] = a == 1 ? b : a;
    }
    batch = std::move(wider);
  }
  return batch;
}

at::Tensor laid_out(const at::Tensor& t, const std::vector<int64_t>& batch, int64_t tail, at::ScalarType dtype) {
  std::vector<int64_t> shape = batch;
  for (int64_t i = t.dim() - tail; i < t.dim(); ++i) shape.push_back(t.size(i));
  return cast(t, dtype, t.device())->expand(shape).contiguous();
}

at::Tensor gradient_for(const at::Tensor& gradient, const at::Tensor& argument, at::ScalarType dtype) {
  return gradient.defined() ? at::sum_to(gradient.to(dtype), argument.sizes()).contiguous() : at::Tensor();
}

}  // namespace fusedgan
