// Runs body(begin, end) over [0, n) on torch's intra-op thread pool (implemented in
// csrc/torch/parallel.cpp, the only place that may include torch).
#pragma once

#include <cstdint>
#include <functional>

namespace fusedgan::cpu {
void parallel_for(int64_t n, const std::function<void(int64_t begin, int64_t end)>& body);
}  // namespace fusedgan::cpu
