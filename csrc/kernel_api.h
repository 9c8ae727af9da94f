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

// One batch of logits of a GAN cost, read through one Operand over its Grid.
struct Batch {
  Grid grid;
  Operand logits;
};

struct DiscriminatorArgs {
  DType dtype;
  Batch real;
  Batch fake;
  double real_label;  // the targets of J(D): 1 and 0, or smoothed (0.9 for real)
  double fake_label;
};

enum class GeneratorKind { Minimax, NonSaturating, MaximumLikelihood };

struct GeneratorArgs {
  DType dtype;
  Batch fake;
  GeneratorKind kind;
};

// A tensor as `rows` rows of `length` contiguous elements: the entropies over one dim.
// Values and gradients are multiplied by scale (1 / log(base)).
struct RowArgs {
  DType dtype;
  int64_t rows;
  int64_t length;
  const void* input;
  double scale;
};

// An elementwise op of one input (binary entropy); values multiplied by scale.
struct UnaryArgs {
  DType dtype;
  Grid grid;
  Operand input;
  double scale;
};

// ---- log-likelihoods: sum over the data of log f(x; a, b)

enum class Family { Normal, Laplace, Exponential, Bernoulli, Poisson, StudentT };

// rows = data sets (the output's elements), cols = the points of each (the summed dims).
// Up to three parameters, in the family's order; unused ones are null Operands (reading as 1).
inline constexpr int kMaxParams = 3;
struct LogLikelihoodArgs {
  DType dtype;
  Family family;
  Grid grid;
  Operand x;
  Operand params[kMaxParams];
};

// Where the backward writes: d/dx per element; each parameter's gradient per element, or
// per row (summed over the row) where that parameter is constant along the row. Null: not
// wanted.
struct LogLikelihoodGrads {
  void* x;
  void* params[kMaxParams];
  bool per_row[kMaxParams];
};

// A diagonal normal mixture's log-likelihood over `sets` data sets, all contiguous:
// x (sets, n, d) and loc (sets, k, d) in dtype; per component, in double, log pi_k, log w_k =
// log pi_k - sum_d log s_kd - d log(2 pi)/2 (sets, k) and 1/s_kd (sets, k, d).
struct MixtureArgs {
  DType dtype;
  int64_t sets, n, k, d;
  const void* x;
  const void* loc;
  const double* log_pi;
  const double* log_weight;
  const double* inv_scale;
};

// The backward's outputs (null: not wanted): grad_x like x; the parameters' in double.
struct MixtureGrads {
  void* x;
  double* logits;
  double* loc;
  double* scale;
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

  // The GAN costs write one value to out and, where the grad pointers are not null, the
  // gradients of that value (dense, like the batches).
  void (*discriminator_cost)(const DiscriminatorArgs&, void* out, void* grad_real, void* grad_fake);
  // out: mean D(x) over real, mean D(x) over fake, the accuracy (x > 0 real, x < 0 fake).
  void (*discriminator_stats)(const DiscriminatorArgs&, void* out);
  void (*generator_cost)(const GeneratorArgs&, void* out, void* grad);

  // One value per row; false if a probability was negative or NaN.
  bool (*entropy)(const RowArgs&, void* out);
  void (*entropy_backward)(const RowArgs&, const void* grad, void* grad_input);
  void (*entropy_with_logits)(const RowArgs&, void* out);
  void (*entropy_with_logits_backward)(const RowArgs&, const void* grad, void* grad_input);
  void (*binary_entropy_with_logits)(const UnaryArgs&, Reduction, void* out);
  // grad: per element, or one value for mean/sum (with grad_scale 1/n for mean).
  void (*binary_entropy_with_logits_backward)(const UnaryArgs&, Operand grad, double grad_scale, void* grad_input);

  // One sum per row into out; the backward takes the incoming gradient per row.
  void (*log_likelihood)(const LogLikelihoodArgs&, void* out);
  void (*log_likelihood_backward)(const LogLikelihoodArgs&, const void* grad, const LogLikelihoodGrads&);
  // out: one log-likelihood per set; grad: one incoming gradient per set.
  void (*mixture_log_likelihood)(const MixtureArgs&, void* out);
  void (*mixture_log_likelihood_backward)(const MixtureArgs&, const void* grad, const MixtureGrads&);
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
inline constexpr int64_t kWorkspaceBytes = 4 * 1024 * sizeof(double) + 64;
struct Launch {
  void* stream;
  void* workspace;
};
void bce_with_logits_forward(const BceArgs&, Reduction, void* out, void* grad_input, Launch);
void bce_with_logits_backward(const BceBackwardArgs&, Launch);
void bce_forward(const BceArgs&, Reduction, void* out, void* grad_input, Launch);
void bce_backward(const BceBackwardArgs&, Launch);
void discriminator_cost(const DiscriminatorArgs&, void* out, void* grad_real, void* grad_fake, Launch);
void discriminator_stats(const DiscriminatorArgs&, void* out, Launch);
void generator_cost(const GeneratorArgs&, void* out, void* grad, Launch);
void entropy(const RowArgs&, void* out, Launch);
void entropy_backward(const RowArgs&, const void* grad, void* grad_input, Launch);
void entropy_with_logits(const RowArgs&, void* out, Launch);
void entropy_with_logits_backward(const RowArgs&, const void* grad, void* grad_input, Launch);
void binary_entropy_with_logits(const UnaryArgs&, Reduction, void* out, Launch);
void binary_entropy_with_logits_backward(const UnaryArgs&, Operand grad, double grad_scale, void* grad_input, Launch);
void log_likelihood(const LogLikelihoodArgs&, void* out, Launch);
void log_likelihood_backward(const LogLikelihoodArgs&, const void* grad, const LogLikelihoodGrads&, Launch);
void mixture_log_likelihood(const MixtureArgs&, void* out, Launch);
void mixture_log_likelihood_backward(const MixtureArgs&, const void* grad, const MixtureGrads&, Launch);
}  // namespace cuda

}  // namespace fusedgan
