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
// What a loop stores per element: nothing, some parameters' gradients, or d/dx too.
enum class Stored { Nothing, Params, ParamsAndX };
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
      using Costly = std::array<typename L::Vec, kMaxParams>;
      const auto totals = sum_rows<kMaxParams + 1>(a.grid, [&](int64_t row, int64_t first, int64_t last) {
        // The sums over one row part. `stored`: what the loop stores per element, at compile
        // time, so that a loop storing nothing (every gradient summed per row, as maximum
        // likelihood asks) has no store in it: with one, streamed above all, the compiler kept
        // the sums in memory, an add through it per vector (half the speed); and d/dx's partial
        // is computed only where d/dx is stored. costly: a split family's costly partials, for
        // the parameters whose gradients are stored per element (a data set of one point, or a
        // parameter expanded along the data).
        const auto run = [&](auto splitting, auto stored, const Costly& costly) {
          constexpr bool kWithX = decltype(stored)::value == Stored::ParamsAndX;
          constexpr bool kStores = decltype(stored)::value != Stored::Nothing;
          std::array<typename L::Sum, kMaxParams + 1> sums;
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
            // A loop storing nothing sums the values whether asked or not: the forward's pass (which
            // asks) and a second backward's (which does not) then run the same code, to the same bits.
            if (!kStores || out.value) {
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
              } else if constexpr (kStores) {
                if (!out.params[k]) continue;
                const auto partial = decltype(splitting)::value ? partials.params[k] + costly[k] : partials.params[k];
                L::store(static_cast<T*>(out.params[k]) + index, g * partial, count, streaming);
              }
            }
          };
          const int64_t begin = row * a.grid.cols;
          with_row_operands<T>(
              per_row, row,
              [&](const auto&... operands) FUSEDGAN_LAMBDA_ALWAYS_INLINE { for_each_run<T>(a.grid, begin + first, begin + last, step, a.x, operands...); },
              a.params[0], a.params[1], a.params[2], grad_per_row);
          std::array<double, kMaxParams + 1> totals;
          for (int k = 0; k <= kValue; ++k) totals[k] = sums[k].total();
          return totals;
        };
        const auto run_storing = [&](auto splitting, const Costly& costly) {
          if (out.x) return run(splitting, std::integral_constant<Stored, Stored::ParamsAndX>{}, costly);
          if (elementwise) return run(splitting, std::integral_constant<Stored, Stored::Params>{}, costly);
          return run(splitting, std::integral_constant<Stored, Stored::Nothing>{}, costly);
        };
        const auto totals = [&] {
          if constexpr (math::kSplits<LogPdf>) {
            if (split) {
              const auto costly = math::row_costly_partials<LogPdf, T>(a, row);
              Costly costly_per_element;
              for (int k = 0; k < kMaxParams; ++k) costly_per_element[k] = typename L::Vec(costly.params[k]);
              auto sums = run_storing(std::true_type{}, costly_per_element);
              for (int k = 0; k < kMaxParams; ++k) sums[k] += double(last - first) * costly.params[k];
              sums[kValue] += double(last - first) * math::row_normalizer<LogPdf, T>(a, row);
              return sums;
            }
          }
          return run_storing(std::false_type{}, Costly{});
        }();
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
