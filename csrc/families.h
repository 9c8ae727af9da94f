// The log-likelihood families by name: their parameters in order and which must be positive
// (scales, rates, degrees of freedom). Shared by the torch operators and the numpy front-end.
#pragma once

#include <string_view>

#include "kernel_api.h"

namespace fusedgan {

struct FamilyInfo {
  Family family;
  const char* name;
  const char* params[kMaxParams];  // "" past the last
  bool positive[kMaxParams];
};

inline constexpr FamilyInfo kFamilies[] = {
    {Family::Normal, "normal", {"loc", "scale", ""}, {false, true, false}},
    {Family::Laplace, "laplace", {"loc", "scale", ""}, {false, true, false}},
    {Family::Exponential, "exponential", {"rate", "", ""}, {true, false, false}},
    {Family::Bernoulli, "bernoulli", {"logits", "", ""}, {false, false, false}},
    {Family::Poisson, "poisson", {"rate", "", ""}, {true, false, false}},
    {Family::StudentT, "student_t", {"df", "loc", "scale"}, {true, false, true}},
};
inline constexpr const char* kFamilyNames = "normal, laplace, exponential, bernoulli, poisson, student_t";

inline int param_count(const FamilyInfo& info) {
  int count = 0;
  while (count < kMaxParams && info.params[count][0] != '\0') ++count;
  return count;
}

// The family called `name`, or null.
inline const FamilyInfo* find_family(std::string_view name) {
  for (const auto& info : kFamilies) {
    if (name == info.name) return &info;
  }
  return nullptr;
}

}  // namespace fusedgan
