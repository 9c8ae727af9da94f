// Calls of this library's ops through the dispatcher, as the autograd kernels make them: then
// tracing (torch.compile), Meta and the device kernels all see the call.
#pragma once

#include <ATen/core/dispatch/Dispatcher.h>

#include <algorithm>
#include <optional>
#include <type_traits>

namespace fusedgan {

// An op's qualified name as a template argument ("fusedgan::entropy").
template <size_t N>
struct OpName {
  char value[N];
  constexpr OpName(const char (&name)[N]) { std::copy_n(name, N, value); }  // NOLINT: implicit by design
};

// How the ops take an argument: tensors by const reference, everything else by value.
template <class T>
using OpArgument =
    std::conditional_t<std::is_same_v<T, at::Tensor> || std::is_same_v<T, std::optional<at::Tensor>>, const T&, T>;

// The op `name` called with these arguments, returning Result; its typed handle is looked up
// once.
template <OpName name, class Result, class... Args>
Result call_op(const Args&... args) {
  static const auto op =
      c10::Dispatcher::singleton().findSchemaOrThrow(name.value, "").template typed<Result(OpArgument<Args>...)>();
  return op.call(args...);
}

}  // namespace fusedgan
