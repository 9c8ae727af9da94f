#include "autocast.h"

#include <ATen/core/dispatch/Dispatcher.h>
#include <c10/core/impl/LocalDispatchKeySet.h>

namespace fusedgan {
namespace {

// One boxed kernel for every op: casts the 16-bit floating tensors among the arguments to
// float32, then calls the op with autocast off.
void run_in_float32(const c10::OperatorHandle& op, torch::jit::Stack* stack) {
  const size_t arguments = op.schema().arguments().size();
  for (auto value = stack->end() - arguments; value != stack->end(); ++value) {
    if (!value->isTensor()) continue;
    const at::Tensor& t = value->toTensor();
    if (t.scalar_type() == at::kHalf || t.scalar_type() == at::kBFloat16) *value = t.to(at::kFloat);
  }
  const c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
  op.callBoxed(stack);
}

}  // namespace

void register_float32_autocast(torch::Library& m, std::initializer_list<const char*> ops) {
  for (const char* name : ops) m.impl(name, torch::CppFunction::makeFromBoxedFunction<&run_in_float32>());
}

}  // namespace fusedgan
