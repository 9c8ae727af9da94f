// Autocast (torch.autocast) as torch treats each op's counterpart: where that runs in float32
// (binary_cross_entropy_with_logits is on the float32 list of CPU and CUDA autocast, so the BCE
// forms, the binary entropy and the GAN costs; on CUDA also log_softmax, log, exp and pow, so
// the entropies and log-likelihoods there), floating inputs of 16 bits are computed in float32
// and the result is float32. Elsewhere (the entropies and log-likelihoods on the CPU, whose
// counterparts autocast leaves in the inputs' dtype, and the discriminator's statistics) there
// is no autocast kernel: the op runs in its inputs' dtype, computing in float inside as always.
// The probability form of BCE is autocast-safe, where torch's refuses to run under CUDA autocast.
#pragma once

#include <torch/library.h>

#include <initializer_list>

namespace fusedgan {

// Registers that policy as the kernels of `ops` for the library's autocast dispatch key.
void register_float32_autocast(torch::Library& m, std::initializer_list<const char*> ops);

}  // namespace fusedgan
