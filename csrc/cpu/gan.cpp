// The GAN costs: J(D) over both batches in one pass (with both gradients), the
// discriminator's statistics in one pass, and J(G) in one pass (with its gradient).
#include "../math/gan.h"
#include "kernels.h"
#include "loops.h"

namespace fusedgan::cpu {
inline namespace FUSEDGAN_ISA {

namespace {
int64_t size_of(const Batch& batch) { return batch.grid.numel(); }
}  // namespace

void discriminator_cost(const DiscriminatorArgs& a, void* out, void* grad_real, void* grad_fake) {
  math::visit_dtype(a.dtype, [&](auto zero) {
    using T = decltype(zero);
    const math::DiscriminatorTerm real_term{a.real_label, 0.5 / double(size_of(a.real))};
    const math::DiscriminatorTerm fake_term{a.fake_label, 0.5 / double(size_of(a.fake))};
    const auto [real, fake] = reduce_two_batches<T>(a.real, grad_real, real_term, a.fake, grad_fake, fake_term);
    math::narrow_into(static_cast<T*>(out),
                      math::discriminator_cost_total(real.first, size_of(a.real), fake.first, size_of(a.fake)));
  });
}

void discriminator_stats(const DiscriminatorArgs& a, void* out) {
  math::visit_dtype(a.dtype, [&](auto zero) {
    using T = decltype(zero);
    const auto [real, fake] = reduce_two_batches<T>(a.real, nullptr, math::DiscriminatorScore{true}, a.fake, nullptr,
                                                    math::DiscriminatorScore{false});
    math::discriminator_stats_into(static_cast<T*>(out), real.first, real.second, size_of(a.real), fake.first,
                                   fake.second, size_of(a.fake));
  });
}

void generator_cost(const GeneratorArgs& a, void* out, void* grad) {
  math::visit_dtype(a.dtype, [&](auto zero) {
    using T = decltype(zero);
    math::with_generator_term(a.kind, 1.0 / double(size_of(a.fake)), [&](auto term) {
      reduce<T>(a.fake.grid, Reduction::Mean, out, grad, term, a.fake.logits);
    });
  });
}

}  // namespace FUSEDGAN_ISA
}  // namespace fusedgan::cpu
