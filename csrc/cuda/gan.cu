// The GAN costs on CUDA: J(D) over both batches in one launch (with both gradients), the
// discriminator's statistics in one launch, J(G) in one launch (with its gradient).
#include "../math/gan.h"
#include "loops.cuh"

namespace fusedgan::cuda {
namespace {

int64_t size_of(const Batch& batch) { return batch.grid.numel(); }

template <class T>
struct CostFinish {
  T* out;
  int64_t n_real, n_fake;
  __device__ void operator()(const double* sums) const {
    math::narrow_into(out, math::compute_t<T>(math::discriminator_cost_total(sums[0], n_real, sums[2], n_fake)));
  }
};

template <class T>
struct StatsFinish {
  T* out;
  int64_t n_real, n_fake;
  __device__ void operator()(const double* sums) const {
    math::discriminator_stats_into(out, sums[0], sums[1], n_real, sums[2], sums[3], n_fake);
  }
};

}  // namespace

void discriminator_cost(const DiscriminatorArgs& a, void* out, void* grad_real, void* grad_fake, Launch launch) {
  math::visit_dtype(a.dtype, [&](auto zero) {
    using T = decltype(zero);
    const math::DiscriminatorTerm real_term{a.real_label, 0.5 / double(size_of(a.real))};
    const math::DiscriminatorTerm fake_term{a.fake_label, 0.5 / double(size_of(a.fake))};
    reduce_two_batches<T>(a.real, grad_real, real_term, a.fake, grad_fake, fake_term,
                          CostFinish<T>{static_cast<T*>(out), size_of(a.real), size_of(a.fake)}, launch);
  });
}

void discriminator_stats(const DiscriminatorArgs& a, void* out, Launch launch) {
  math::visit_dtype(a.dtype, [&](auto zero) {
    using T = decltype(zero);
    reduce_two_batches<T>(a.real, nullptr, math::DiscriminatorScore{true}, a.fake, nullptr,
                          math::DiscriminatorScore{false},
                          StatsFinish<T>{static_cast<T*>(out), size_of(a.real), size_of(a.fake)}, launch);
  });
}

void generator_cost(const GeneratorArgs& a, void* out, void* grad, Launch launch) {
  math::visit_dtype(a.dtype, [&](auto zero) {
    using T = decltype(zero);
    math::with_generator_term(a.kind, 1.0 / double(size_of(a.fake)), [&](auto term) {
      reduce<T>(a.fake.grid, Reduction::Mean, out, grad, launch, term, a.fake.logits);
    });
  });
}

}  // namespace fusedgan::cuda
