// The interface between the torch layer (csrc/torch) and the kernels (csrc/cpu,
// csrc/cuda): plain structs of pointers and sizes, no torch types, so that the kernels
// compile without torch headers.
#pragma once

#include <cstdint>

#include "math/config.h"

namespace fusedgan {

enum class DType { Float16, BFloat16, Float32, Float64 };

// torch's numbering (at::Reduction).
enum class Reduction : int64_t { None = 0, Mean = 1, Sum = 2 };

// The n elements of a call as rows x cols, row-major. Every input is read through an
// Operand: element (row, col) of it is data[row * row_stride + (broadcast_col ? 0 : col)],
// which covers full tensors, scalars, per-column (pos_weight of shape (C,)) and per-row
// weights without copies. A null data pointer reads as 1.
struct Grid {
  int64_t rows = 0;
  int64_t cols = 0;
  FUSEDGAN_HOST_DEVICE int64_t numel() const { return rows * cols; }
};

// What a reduction multiplies the sum by: 1/n for the mean.
inline double reduction_scale(Grid grid, Reduction reduction) {
  return reduction == Reduction::Mean ? 1.0 / double(grid.numel()) : 1.0;
}

struct Operand {
  const void* data = nullptr;
  int64_t row_stride = 0;
  bool broadcast_col = false;
};

// Outputs are dense, row-major over the grid.
struct BceArgs {
  DType dtype;
  Grid grid;
  Operand input;       // logits, or probabilities for the probability form
  Operand target;
  Operand weight;
  Operand pos_weight;  // logits form only
};

struct BceBackwardArgs {
  BceArgs forward;
  Operand grad;         // the incoming gradient: per element, or one value for mean/sum
  double scale;         // 1/n for mean, else 1
  void* grad_input;     // null when not wanted
  void* grad_target;    // null when not wanted
};

namespace cpu {
// The forwards also store the input gradient (at grad = 1) in grad_input when it is not
// null, which only reduced losses (mean, sum) ask for.
struct KernelTable {
  void (*bce_with_logits_forward)(const BceArgs&, Reduction, void* out, void* grad_input);
  void (*bce_with_logits_backward)(const BceBackwardArgs&);
  // false if the probability form met an input outside [0, 1] (or NaN)
  bool (*bce_forward)(const BceArgs&, Reduction, void* out, void* grad_input);
  void (*bce_backward)(const BceBackwardArgs&);
};
// The table for the best instruction set this CPU supports (FUSEDGAN_SIMD=avx512|avx2|generic
// in the environment narrows the choice).
const KernelTable& kernels();
const char* simd_level();
}  // namespace cpu

namespace cuda {
// Where a launch runs: the stream (a cudaStream_t) and, for reductions, a device scratch
// buffer of kWorkspaceBytes that the kernel zeroes itself. All launches are asynchronous;
// probability-form inputs outside [0, 1] give NaN, since checking them would cost a host
// synchronisation.
inline constexpr int64_t kWorkspaceBytes = 1024 * sizeof(double) + 64;
struct Launch {
  void* stream;
  void* workspace;
};
void bce_with_logits_forward(const BceArgs&, Reduction, void* out, void* grad_input, Launch);
void bce_with_logits_backward(const BceBackwardArgs&, Launch);
void bce_forward(const BceArgs&, Reduction, void* out, void* grad_input, Launch);
void bce_backward(const BceBackwardArgs&, Launch);
}  // namespace cuda

}  // namespace fusedgan
