#include "layout.h"

#include <ATen/ExpandUtils.h>

namespace fusedgan {

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

OptionalTensor cast(const OptionalTensor& t, at::ScalarType dtype, c10::Device device) {
  if (!t) return std::nullopt;
  if (t->scalar_type() == dtype && t->device() == device) return *t;  // `to` would cost a dispatch even then
  return t->to(device, dtype);
}

namespace {

// A tensor as if expanded to a shape: its data and one stride per dimension of the shape
// (0 where broadcast). Arithmetic only; Tensor::expand would cost a dispatch per operand.
struct Broadcast {
  const void* data = nullptr;
  c10::SmallVector<int64_t, 8> strides;
};

Broadcast broadcast_view(const Tensor& t, at::IntArrayRef shape) {
  Broadcast view{t.data_ptr(), c10::SmallVector<int64_t, 8>(shape.size(), 0)};
  const int64_t offset = int64_t(shape.size()) - t.dim();
  for (int64_t j = 0; j < t.dim(); ++j) view.strides[offset + j] = t.size(j) == 1 ? 0 : t.stride(j);
  return view;
}

// Element (row, col) of a broadcast view split into rows = shape[:k] and cols = shape[k:],
// as an Operand; nothing if the strides don't fit that form.
std::optional<Operand> describe(const Broadcast& view, at::IntArrayRef shape, size_t k) {
  const auto& strides = view.strides;
  Operand operand{view.data};
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

// The common case, tensors that are contiguous and of the full shape, without the search.
bool all_dense(at::IntArrayRef shape, std::initializer_list<const OptionalTensor*> tensors) {
  for (const OptionalTensor* t : tensors) {
    if (*t && !((*t)->sizes() == shape && (*t)->is_contiguous())) return false;
  }
  return true;
}

}  // namespace

Plan plan(at::IntArrayRef shape, std::initializer_list<const OptionalTensor*> tensors) {
  Plan result;
  if (all_dense(shape, tensors)) {
    result.grid = Grid{1, c10::multiply_integers(shape)};
    for (const OptionalTensor* t : tensors) result.operands.push_back(*t ? Operand{(*t)->data_ptr()} : Operand{});
    return result;
  }
  std::vector<std::optional<Broadcast>> views;
  for (const OptionalTensor* t : tensors) {
    views.push_back(*t ? std::optional<Broadcast>(broadcast_view(**t, shape)) : std::nullopt);
  }
  const auto try_split = [&](size_t k) {
    result.operands.clear();
    for (const auto& view : views) {
      if (!view) {
        result.operands.push_back(Operand{});
        continue;
      }
      const auto operand = describe(*view, shape, k);
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
  auto tensor = tensors.begin();
  for (auto& view : views) {
    if (view && !describe(*view, shape, 0)) {
      result.copies.push_back((**tensor)->expand(shape).contiguous());
      view = broadcast_view(result.copies.back(), shape);
    }
    ++tensor;
  }
  try_split(0);
  return result;
}

Plan plan_rows(at::IntArrayRef shape, size_t split, std::initializer_list<const OptionalTensor*> tensors) {
  Plan result;
  result.grid = Grid{c10::multiply_integers(shape.begin(), shape.begin() + split),
                     c10::multiply_integers(shape.begin() + split, shape.end())};
  for (const OptionalTensor* t : tensors) {
    if (!*t) {
      result.operands.push_back(Operand{});
      continue;
    }
    auto operand = describe(broadcast_view(**t, shape), shape, split);
    if (!operand) {
      result.copies.push_back((*t)->expand(shape).contiguous());
      operand = describe(broadcast_view(result.copies.back(), shape), shape, split);
    }
    result.operands.push_back(*operand);
  }
  return result;
}

}  // namespace fusedgan
