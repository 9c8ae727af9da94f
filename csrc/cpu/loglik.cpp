// Log-likelihoods: per row (data set), the sum of log f over its points in one pass;
// backward: d/dx per element and the parameters' gradients per element or summed per row,
// and where asked the log-likelihoods too, summed as the forward sums them.
#include "../math/loglik.h"
#include "kernels.h"
#include "loops.h"

namespace fusedgan::cpu {
inline namespace FUSEDGAN_ISA {

namespace {
// A row's value of an operand constant along the row (absent ones read as 1), as a Uniform.
template <class T>
Uniform<T> row_value(const Operand& operand, int64_t row) {
  if (!operand.data) return {1};
  return {math::widen(static_cast<const T*>(operand.data)[row * operand.row_stride])};
}

// f(operands...) for a row: as their row values where they are constant along each row
// (per_row), as they are otherwise.
template <class T, class F, class... Operands>
FUSEDGAN_ALWAYS_INLINE auto with_row_operands(bool per_row, int64_t row, const F& f, const Operands&... operands) {
  if (per_row) return f(row_value<T>(operands, row)...);
  return f(operands...);
}
}  // namespace

void log_likelihood(const LogLikelihoodArgs& a, void* out) {
  math::visit_dtype(a.dtype, [&](auto zero) {
    using T = decltype(zero);
    math::with_log_pdf(a.family, [&](auto log_pdf) {
      using LogPdf = decltype(log_pdf);
      const bool per_row = math::params_per_row(a);
      const bool split = math::kSplits<LogPdf> && per_row;
      const auto totals = sum_rows<1>(a.grid, [&](int64_t row, int64_t first, int64_t last) {
        const int64_t begin = row * a.grid.cols;
        const auto sum = [&](const auto& f) FUSEDGAN_LAMBDA_ALWAYS_INLINE {
          return with_row_operands<T>(
              per_row, row,
              [&](const auto&... params) FUSEDGAN_LAMBDA_ALWAYS_INLINE {
                return reduce_chunk<T>(a.grid, begin + first, begin + last, nullptr, f, a.x, params...).first;
              },
              a.params[0], a.params[1], a.params[2]);
        };
        if constexpr (math::kSplits<LogPdf>) {
          if (split) {  // the parameters' terms once per row part, in double
            const auto data_term = [](auto x, auto p0, auto p1, auto p2) { return LogPdf::data_term(x, p0, p1, p2); };
            return std::array<double, 1>{sum(data_term) + double(last - first) * math::row_normalizer<LogPdf, T>(a, row)};
          }
        }
        return std::array<double, 1>{sum(log_pdf)};
      });
      for (int64_t row = 0; row < a.grid.rows; ++row) math::narrow_into(static_cast<T*>(out) + row, totals[row][0]);
    });
  });
}

void log_likelihood_backward(const LogLikelihoodArgs& a, const void* grad, const LogLikelihoodGrads& out) {
  math::visit_dtype(a.dtype, [&](auto zero) {
    using T = decltype(zero);
    using L = Lanes<T>;
    const Operand grad_per_row{grad, 1, true};
    bool elementwise = out.x != nullptr;  // an output as large as x (not per row)
    for (int k = 0; k < kMaxParams; ++k) elementwise = elementwise || (out.params[k] && !out.per_row[k]);
    const bool streaming = elementwise && streams<T>(a.grid.numel());
    math::with_log_pdf(a.family, [&](auto log_pdf) {
      using LogPdf = decltype(log_pdf);
      // A split family with its parameters constant along each row: the data's partials per
      // element, the costly ones once per row part, in double.
      const bool per_row = math::params_per_row(a);
      const bool split = math::kSplits<LogPdf> && per_row;
      constexpr int kValue = kMaxParams;  // the log-likelihood's slot in the sums
      const auto totals = sum_rows<kMaxParams + 1>(a.grid, [&](int64_t row, int64_t first, int64_t last) {
        typename L::Sum sums[kMaxParams + 1];
        // A split family's costly partials, for the parameters whose gradients are stored per
        // element (a data set of one point, or a parameter expanded along the data).
        typename L::Vec costly_per_element[kMaxParams] = {0.0f, 0.0f, 0.0f};
        // with_x: whether d/dx is stored, at compile time, so that its partial is computed only then
        const auto run = [&](auto splitting, auto with_x) {
          constexpr bool kWithX = decltype(with_x)::value;
          const auto step = [&](int64_t index, int count, const auto& cursors, int64_t offset) {
            const auto [x, p0, p1, p2, g] = std::apply(
                [&](const auto&... c) FUSEDGAN_LAMBDA_ALWAYS_INLINE { return std::array{c.at(offset, count)...}; },
                cursors);
            const auto partials = [&] {
              if constexpr (decltype(splitting)::value) {
                return LogPdf::template data_partials<kWithX>(x, p0, p1, p2);
              } else {
                return log_pdf.template partials<kWithX>(x, p0, p1, p2);
              }
            }();
            if (out.value) {
              if constexpr (decltype(splitting)::value) {
                sums[kValue].add(LogPdf::data_term(x, p0, p1, p2), count);
              } else {
                sums[kValue].add(log_pdf(x, p0, p1, p2), count);
              }
            }
            if constexpr (kWithX) L::store(static_cast<T*>(out.x) + index, g * partials.x, count, streaming);
            for (int k = 0; k < kMaxParams; ++k) {
              if (out.per_row[k]) {
                sums[k].add(partials.params[k], count);  // times the row's g when stored
              } else if (out.params[k]) {
                const auto partial = decltype(splitting)::value ? partials.params[k] + costly_per_element[k] : partials.params[k];
                L::store(static_cast<T*>(out.params[k]) + index, g * partial, count, streaming);
              }
            }
          };
          const int64_t begin = row * a.grid.cols;
          with_row_operands<T>(
              per_row, row,
              [&](const auto&... operands) FUSEDGAN_LAMBDA_ALWAYS_INLINE { for_each_run<T>(a.grid, begin + first, begin + last, step, a.x, operands...); },
              a.params[0], a.params[1], a.params[2], grad_per_row);
        };
        std::array<double, kMaxParams + 1> totals{};
        if constexpr (math::kSplits<LogPdf>) {
          if (split) {
            const auto costly = math::row_costly_partials<LogPdf, T>(a, row);
            for (int k = 0; k < kMaxParams; ++k) costly_per_element[k] = typename L::Vec(costly.params[k]);
            out.x ? run(std::true_type{}, std::true_type{}) : run(std::true_type{}, std::false_type{});
            for (int k = 0; k < kMaxParams; ++k) totals[k] = double(last - first) * costly.params[k] + sums[k].total();
            totals[kValue] = sums[kValue].total() + double(last - first) * math::row_normalizer<LogPdf, T>(a, row);
          }
        }
        if (!split) {
          out.x ? run(std::false_type{}, std::true_type{}) : run(std::false_type{}, std::false_type{});
          for (int k = 0; k <= kValue; ++k) totals[k] = sums[k].total();
        }
        if (streaming) end_streaming();
        return totals;
      });
      if (out.value) {
        for (int64_t row = 0; row < a.grid.rows; ++row) {
          math::narrow_into(static_cast<T*>(out.value) + row, totals[row][kValue]);
        }
      }
      for (int k = 0; k < kMaxParams; ++k) {
        if (!out.per_row[k]) continue;
        for (int64_t row = 0; row < a.grid.rows; ++row) {
          math::narrow_scaled_into(static_cast<T*>(out.params[k]) + row, totals[row][k], static_cast<const T*>(grad)[row]);
        }
      }
    });
  });
}

}  // namespace FUSEDGAN_ISA
}  // namespace fusedgan::cpu
