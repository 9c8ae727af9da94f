// Normal mixtures on CUDA: a thread per data set, by the functions of csrc/math/mixture.h.
#include "../math/mixture.h"
#include "loops.cuh"

namespace fusedgan::cuda {
namespace {

// One data set per thread, one point at a time in double.
template <class T>
struct MixtureForward {
  MixtureArgs a;
  T* out;
  __device__ void operator()(int64_t set) const {
    const math::MixtureSet<T> s = math::mixture_set<T>(a, set);
    double a_block[math::kMixtureBlock], total = 0;
    for (int64_t i = 0; i < s.n; ++i) {
      const auto x = [&](int64_t c) { return double(math::widen(s.x[i * s.d + c])); };
      total += s.template point_log_likelihood<double>(x, a_block);
    }
    math::narrow_into(out + set, math::compute_t<T>(total));
  }
};

// The gradients of each set's log-likelihood times grad[set], written into (not added to)
// the outputs that are not null: x's in the data's type, the parameters' in double.
template <class T>
struct MixtureBackward {
  MixtureArgs a;
  const T* grad;
  MixtureGrads out;
  __device__ void operator()(int64_t set) const {
    const math::MixtureSet<T> s = math::mixture_set<T>(a, set);
    const int64_t k = s.k, d = s.d;
    const double g = double(math::widen(grad[set]));
    double* grad_logits = out.logits ? out.logits + set * k : nullptr;
    double* grad_loc = out.loc ? out.loc + set * k * d : nullptr;
    double* grad_scale = out.scale ? out.scale + set * k * d : nullptr;
    T* grad_x = out.x ? static_cast<T*>(out.x) + set * s.n * d : nullptr;
    for (int64_t j = 0; j < k * d; ++j) {
      if (grad_loc) grad_loc[j] = 0;
      if (grad_scale) grad_scale[j] = 0;
    }
    for (int64_t j = 0; j < k && grad_logits; ++j) grad_logits[j] = 0;
    for (int64_t j = 0; j < s.n * d && grad_x && k == 0; ++j) math::narrow_into(grad_x + j, math::compute_t<T>(0));
    for (int64_t i = 0; i < s.n; ++i) {
      // d/dx of a point with several blocks is kept in grad_x between them.
      const auto add_to_x = [&](int64_t c, double pull, bool first_block) {
        if (!grad_x) return;
        const double before = first_block ? 0.0 : double(math::widen(grad_x[i * d + c]));
        math::narrow_into(grad_x + i * d + c, math::compute_t<T>(before - pull));
      };
      const auto x = [&](int64_t c) { return double(math::widen(s.x[i * d + c])); };
      s.template add_point_gradients<double>(x, g, grad_logits, grad_loc, grad_scale, add_to_x);
    }
    if (grad_logits) math::subtract_expected_counts(a, set, g, grad_logits);
  }
};

}  // namespace

void mixture_log_likelihood(const MixtureArgs& a, void* out, Launch launch) {
  math::visit_dtype(a.dtype, [&](auto zero) {
    using T = decltype(zero);
    for_each_row(a.sets, MixtureForward<T>{a, static_cast<T*>(out)}, launch);
  });
}

void mixture_log_likelihood_backward(const MixtureArgs& a, const void* grad, const MixtureGrads& out, Launch launch) {
  math::visit_dtype(a.dtype, [&](auto zero) {
    using T = decltype(zero);
    for_each_row(a.sets, MixtureBackward<T>{a, static_cast<const T*>(grad), out}, launch);
  });
}

}  // namespace fusedgan::cuda
