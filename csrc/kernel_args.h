// What the torch layer (csrc/torch) hands the kernels (csrc/cpu, csrc/cuda): plain structs of
// pointers and sizes, no torch types, so that the kernels compile without torch headers.
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

struct Operand {
  const void* data = nullptr;
  int64_t row_stride = 0;
  bool broadcast_col = false;
};

// What a reduction multiplies the sum by: 1/n for the mean.
inline double reduction_scale(Grid grid, Reduction reduction) {
  return reduction == Reduction::Mean ? 1.0 / double(grid.numel()) : 1.0;
}

// ---- elementwise losses (BCE, binary entropy): a formula of csrc/math over up to
// kMaxOperands operands, in the formula's order. Outputs are dense, row-major over the grid.

inline constexpr int kMaxOperands = 4;

struct ElementwiseArgs {
  DType dtype;
  Grid grid;
  Operand operands[kMaxOperands];
  double scale = 1;  // multiplies values and gradients of a formula that takes one (a unit's 1/log(base))
};

struct ElementwiseBackwardArgs {
  ElementwiseArgs forward;
  Operand grad;         // the incoming gradient: per element, or one value for mean/sum
  double grad_scale;    // 1/n for mean, else 1
  void* grads[2];       // d/d(operand 0) and d/d(operand 1); null when not wanted
};

// ---- the GAN costs: batches of discriminator logits

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

// ---- row forms (the entropies over one dim): `rows` rows of `length` contiguous elements.
// Values and gradients are multiplied by scale (1 / log(base)).
struct RowArgs {
  DType dtype;
  int64_t rows;
  int64_t length;
  const void* input;
  double scale;
};

// ---- label counts: per row, how many of its points carry each label (categorical data)

// labels (rows, points), contiguous; counts (rows, classes), contiguous, whole numbers.
struct LabelCountArgs {
  int64_t rows;
  int64_t points;
  int64_t classes;
  const int64_t* labels;
  double* counts;
};

// ---- log-likelihoods: sum over the data of log f(x; a, b, c)

// One enumerator per row of families.def.
enum class Family {
#define FUSEDGAN_FAMILY(id, Formula) id,
#include "families.def"
};

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
// per row (summed over the row) where that parameter is constant along the row; and the
// per-row log-likelihoods, the forward's output, in the same pass (a forward that gives
// its parameters' gradients at grad = 1). Null: not wanted.
struct LogLikelihoodGrads {
  void* x;
  void* params[kMaxParams];
  bool per_row[kMaxParams];
  void* value;
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

// A multivariate normal's log-likelihood over `sets` data sets, all contiguous: x (sets, n, d)
// in dtype; per set, in double, loc (sets, d), the Cholesky factor L of the covariance
// (sets, d, d; only its lower triangle is read), 1/L_jj (sets, d) and log_normalizer =
// -sum_j log L_jj - d log(2 pi)/2 (sets).
struct MultivariateNormalArgs {
  DType dtype;
  int64_t sets, n, d;
  const void* x;
  const double* loc;
  const double* scale_tril;
  const double* inv_diagonal;
  const double* log_normalizer;
};

// The backward's outputs (null: not wanted): grad_x like x; the parameters' in double,
// scale_tril's (sets, d, d) with its upper triangle 0; and each set's log-likelihood in dtype,
// where the forward takes its parameters' gradients in the same pass.
struct MultivariateNormalGrads {
  void* x;
  double* loc;
  double* scale_tril;
  void* log_likelihood;
};

// EM for the normal mixture (fusedgan.mle's normal_mixture fit), as scikit-learn's: every set
// from its start until its lower bound (the E step's mean log-likelihood per point) changes by
// less than tol, or for max_iter iterations, the M step taken either way. x (sets, n, d) in
// dtype, the E step's type; in double, log_pi (sets, k) (normalised), loc and scale (sets, k, d)
// hold the start and are overwritten with the fit; per set out: the last lower bound, the
// iterations and whether it converged.
struct MixtureEmArgs {
  DType dtype;
  int64_t sets, n, k, d;
  const void* x;
  double tol, reg_covar;
  int64_t max_iter;
  double* log_pi;
  double* loc;
  double* scale;
  double* lower_bound;
  int64_t* iterations;
  bool* converged;
};

// ---- the Newton fits' helpers (fusedgan.mle)

// x (rows, length) float64, contiguous, a data set per row; out (rows, 2) in double: each
// row's sum of log x, then its sum of log(1 - x) (the beta's sufficient statistics).
struct LogSumArgs {
  int64_t rows;
  int64_t length;
  const double* x;
};

// x, digamma and trigamma (n) float64, contiguous: psi(x) and psi'(x) of each element.
struct PolygammaArgs {
  int64_t n;
  const double* x;
  double* digamma;
  double* trigamma;
};

// Scratch memory for CUDA launches on their device, uninitialised, alive until the op
// returns: kWorkspaceBytes for a grid-wide reduction (which zeroes its counter on the stream
// first), a slice sum per long row. Ops that do not reduce never ask.
inline constexpr int64_t kWorkspaceBytes = 4 * 1024 * sizeof(double) + 64;
class Workspace {
 public:
  virtual void* allocate(int64_t bytes) = 0;

 protected:
  ~Workspace() = default;
};

// Where a CUDA launch runs: the stream (a cudaStream_t) and the workspace. All launches are
// asynchronous.
struct Launch {
  void* stream;
  Workspace* workspace;
};

}  // namespace fusedgan
