// The CPU kernel table: chosen once, the build for the best instruction set this CPU has.
#include <cstdlib>
#include <cstring>

#include "kernels.h"

namespace fusedgan::cpu {

#define FUSEDGAN_DECLARE_TABLE(isa) \
  namespace isa {                   \
  const KernelTable<>& kernel_table(); \
  }
FUSEDGAN_DECLARE_TABLE(generic)
#if defined(__x86_64__)
FUSEDGAN_DECLARE_TABLE(avx2)
FUSEDGAN_DECLARE_TABLE(avx512)
#endif
#undef FUSEDGAN_DECLARE_TABLE

namespace {

struct Choice {
  const char* name;
  const KernelTable<>* table;
};

bool allowed(const char* level) {
  const char* requested = std::getenv("FUSEDGAN_SIMD");
  if (!requested || !*requested) return true;
  // Levels are ordered: asking for avx2 also rules out avx512.
  const char* order[] = {"generic", "avx2", "avx512"};
  int requested_rank = 2, level_rank = 0;
  for (int i = 0; i < 3; ++i) {
    if (std::strcmp(requested, order[i]) == 0) requested_rank = i;
    if (std::strcmp(level, order[i]) == 0) level_rank = i;
  }
  return level_rank <= requested_rank;
}

Choice choose() {
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (allowed("avx512") && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl")) {
    return {"avx512", &avx512::kernel_table()};
  }
  if (allowed("avx2") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    return {"avx2", &avx2::kernel_table()};
  }
#endif
  return {"generic", &generic::kernel_table()};
}

const Choice& choice() {
  static const Choice chosen = choose();
  return chosen;
}

}  // namespace

const KernelTable<>& kernels() { return *choice().table; }
const char* simd_level() { return choice().name; }

}  // namespace fusedgan::cpu
