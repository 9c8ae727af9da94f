#include <ATen/Parallel.h>

#include "../cpu/parallel.h"

namespace fusedgan::cpu {

void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& body) {
  at::parallel_for(0, n, 1, body);
}

}  // namespace fusedgan::cpu
