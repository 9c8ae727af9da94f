// The log-likelihood families by name, expanded from families.def: their parameters in order
// with their supports, and their densities for the documentation. Host code only (the torch
// op's checks, the Python module's list of families).
#pragma once

#include <iterator>
#include <string>
#include <string_view>

#include "math/loglik.h"

namespace fusedgan {

struct FamilyInfo {
  Family family;
  const char* name;
  const char* data;  // the data argument's name: x, or k for counts
  const char* density;
  int param_count;
  const math::ParamSpec* params;
};

inline constexpr FamilyInfo kFamilies[] = {
#define FUSEDGAN_FAMILY(id, Formula)                                                                \
  {Family::id, math::Formula::kName, math::Formula::kData, math::Formula::kDensity,                    \
   int(std::size(math::Formula::kParams)),                                                            \
   math::Formula::kParams},
#include "families.def"
};

#define FUSEDGAN_FAMILY(id, Formula) \
  static_assert(std::size(math::Formula::kParams) <= kMaxParams, #Formula " has too many parameters");
#include "families.def"

// The family called `name`, or null.
inline const FamilyInfo* find_family(std::string_view name) {
  for (const auto& info : kFamilies) {
    if (name == info.name) return &info;
  }
  return nullptr;
}

// "normal, laplace, ...", for messages.
inline std::string family_names() {
  std::string names;
  for (const auto& info : kFamilies) names += (names.empty() ? "" : ", ") + std::string(info.name);
  return names;
}

}  // namespace fusedgan
