#include "common.h"

#include <ATen/ExpandUtils.h>

namespace fusedgan {

void check_floating(const char* op, const char* name, const Tensor& t) {
  const auto type = t.scalar_type();
  TORCH_CHECK(type == at::kHalf || type == at::kBFloat16 || type == at::kFloat || type == at::kDouble, op,
              ": expected ", name, " to be a floating point tensor (float16, bfloat16, float32 or float64), got ",
              type);
}

void check_same_device(const char* op, const char* name, const Tensor& t, const Tensor& input) {
  TORCH_CHECK(t.device() == input.device(), op, ": expected ", name, " on ", input.device(),
              " like input, got ", t.device());
}

void check_broadcastable(const char* op, const char* name, const OptionalTensor& t, const Tensor& input) {
  if (!t) return;
  check_floating(op, name, *t);
  check_same_device(op, name, *t, input);
  TORCH_CHECK(at::is_expandable_to(t->sym_sizes(), input.sym_sizes()), op, ": ", name, " of shape ",
              t->sym_sizes(), " cannot be broadcast to the input's shape ", input.sym_sizes());
}

void check_same_shape(const char* op, const char* name, const Tensor& t, const Tensor& input) {
  TORCH_CHECK_VALUE(t.sym_sizes() == input.sym_sizes(), op, ": ", name, " size ", t.sym_sizes(),
                    " must be the same as input size ", input.sym_sizes());
}

Reduction check_reduction(const char* op, int64_t reduction) {
  TORCH_CHECK_VALUE(reduction >= 0 && reduction <= 2, op, ": reduction must be 0 (none), 1 (mean) or 2 (sum), got ",
                    reduction);
  return static_cast<Reduction>(reduction);
}

DType kernel_dtype(at::ScalarType type) {
  switch (type) {
    case at::kHalf:
      return DType::Float16;
    case at::kBFloat16:
      return DType::BFloat16;
    case at::kFloat:
      return DType::Float32;
    default:
      return DType::Float64;
  }
}

OptionalTensor cast(const OptionalTensor& t, at::ScalarType dtype) {
  if (!t) return std::nullopt;
  return t->to(dtype);
}

namespace {

// Element (row, col) of t, t expanded to shape and split into rows = shape[:k] and
// cols = shape[k:], as an Operand; nothing if the strides don't fit that form.
std::optional<Operand> describe(const Tensor& expanded, at::IntArrayRef shape, size_t k) {
  const auto strides = expanded.strides();
  Operand operand{expanded.data_ptr()};
  // Columns: contiguous, or all broadcast.
  bool contiguous = true, broadcast = true;
  int64_t expected = 1;
  for (size_t j = shape.size(); j-- > k;) {
    if (shape[j] == 1) continue;
    contiguous = contiguous && strides[j] == expected;
    broadcast = broadcast && strides[j] == 0;
    expected *= shape[j];
  }
  if (!contiguous && !broadcast) return std::nullopt;
  operand.broadcast_col = broadcast && !contiguous;
  // Rows: one stride for the flattened row index, or all broadcast.
  bool found_inner = false;
  for (size_t j = k; j-- > 0;) {
    if (shape[j] == 1) continue;
    if (!found_inner) {
      found_inner = true;
      operand.row_stride = strides[j];
      expected = strides[j] * shape[j];
    } else if (strides[j] != expected) {
      return std::nullopt;
    } else {
      expected *= shape[j];
    }
  }
  return operand;
}

// Below this many columns, copying a broadcast operand beats running short rows.
constexpr int64_t kMinColumns = 64;

}  // namespace

Plan plan(at::IntArrayRef shape, std::initializer_list<const OptionalTensor*> tensors) {
  Plan result;
  std::vector<Tensor> expanded;
  for (const OptionalTensor* t : tensors) expanded.push_back(*t ? (*t)->expand(shape) : Tensor());
  const auto try_split = [&](size_t k) {
    result.operands.clear();
    for (const Tensor& t : expanded) {
      if (!t.defined()) {
        result.operands.push_back(Operand{});
        continue;
      }
      const auto operand = describe(t, shape, k);
      if (!operand) return false;
      result.operands.push_back(*operand);
    }
    const int64_t cols = c10::multiply_integers(shape.begin() + k, shape.end());
    result.grid = Grid{c10::multiply_integers(shape.begin(), shape.begin() + k), cols};
    return true;
  };
  for (size_t k = 0; k <= shape.size(); ++k) {
    if (try_split(k)) {
      if (k == 0 || result.grid.cols >= kMinColumns) return result;
      break;
    }
  }
  // Copy what does not read as one row, then run the whole tensor as one row.
  for (Tensor& t : expanded) {
    if (t.defined() && !describe(t, shape, 0)) {
      t = t.contiguous();
      result.copies.push_back(t);
    }
  }
  try_split(0);
  return result;
}

}  // namespace fusedgan
