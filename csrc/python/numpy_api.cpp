// The numpy front-end's kernels: numpy arrays in, numpy arrays out, straight to the CPU
// kernels with no torch tensor in between. python/fusedgan/numpy.py lays the arrays out
// (broadcast, the summed axes last, two dimensions) and checks the parameters; these
// functions read that layout through Operands and release the GIL while the kernels run.
#include "numpy_api.h"

#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <string>

#include "../families.h"

namespace fusedgan {
namespace {

namespace py = pybind11;

DType dtype_of(const py::array& a, const char* name) {
  if (a.dtype().is(py::dtype::of<float>())) return DType::Float32;
  if (a.dtype().is(py::dtype::of<double>())) return DType::Float64;
  throw py::type_error(std::string("fusedgan.numpy: expected ") + name + " to be a float32 or float64 array");
}

// Checked here too, not only by python/fusedgan/numpy.py: the kernels read `like`'s extent.
void check_like(const py::array& a, const py::array& like, const char* name) {
  if (!a.dtype().is(like.dtype())) throw py::type_error(std::string("fusedgan.numpy: ") + name + " must have x's dtype");
  const bool same_shape = a.ndim() == like.ndim() && std::equal(a.shape(), a.shape() + a.ndim(), like.shape());
  if (!same_shape) throw py::value_error(std::string("fusedgan.numpy: ") + name + " must have x's shape");
}

// A new, writeable array (numpy.empty).
py::array new_array(const py::dtype& dtype, const std::vector<py::ssize_t>& shape) {
  return py::module_::import("numpy").attr("empty")(py::tuple(py::cast(shape)), dtype);
}

// A (rows, cols) array whose columns are contiguous or broadcast (stride 0).
Operand operand_of(const py::array& a) {
  if (a.ndim() != 2) throw py::value_error("fusedgan.numpy: internal layout error (expected 2 dimensions)");
  const auto item = a.itemsize();
  const bool broadcast = a.strides(1) == 0 && a.shape(1) > 1;
  if (!broadcast && a.shape(1) > 1 && a.strides(1) != item) {
    throw py::value_error("fusedgan.numpy: internal layout error (columns neither contiguous nor broadcast)");
  }
  return Operand{a.data(), a.strides(0) / item, broadcast};
}

py::array log_likelihood(const std::string& family, const py::array& x, const std::vector<py::array>& params) {
  const FamilyInfo* info = find_family(family);
  if (!info) throw py::value_error("unknown family '" + family + "'; known: " + kFamilyNames);
  if (int(params.size()) != param_count(*info)) throw py::value_error("wrong number of parameters for " + family);
  LogLikelihoodArgs args{dtype_of(x, "x"), info->family, Grid{x.shape(0), x.shape(1)}, operand_of(x), {}};
  for (size_t k = 0; k < params.size(); ++k) {
    check_like(params[k], x, info->params[k]);
    args.params[k] = operand_of(params[k]);
  }
  py::array out = new_array(x.dtype(), {x.shape(0)});
  void* data = out.mutable_data();
  {
    py::gil_scoped_release release;
    cpu::kernels().log_likelihood(args, data);
  }
  return out;
}

// The entropy of each row of a C-contiguous (rows, length) array: of the probabilities, or
// of the softmax of the logits; scale = 1 / log(base).
py::array entropy(const py::array& rows, double scale, bool logits) {
  const py::array contiguous = py::array::ensure(rows, py::array::c_style);
  if (contiguous.ndim() != 2) throw py::value_error("fusedgan.numpy: entropy expects (rows, length)");
  const RowArgs args{dtype_of(contiguous, "probs"), contiguous.shape(0), contiguous.shape(1), contiguous.data(), scale};
  py::array out = new_array(contiguous.dtype(), {contiguous.shape(0)});
  void* data = out.mutable_data();
  bool in_domain = true;
  {
    py::gil_scoped_release release;
    if (logits) {
      cpu::kernels().entropy_with_logits(args, data);
    } else {
      in_domain = cpu::kernels().entropy(args, data);
    }
  }
  if (!in_domain) throw py::value_error("entropy: probs must not be negative or NaN");
  return out;
}

// BCE with logits of two C-contiguous arrays of one shape, reduced (reduction 1 or 2) or
// elementwise (0, same shape as input).
py::array bce_with_logits(const py::array& input, const py::array& target, int reduction) {
  const py::array x = py::array::ensure(input, py::array::c_style);
  const py::array y = py::array::ensure(target, py::array::c_style);
  check_like(y, x, "target");
  const BceArgs args{dtype_of(x, "input"), Grid{1, x.size()}, Operand{x.data()}, Operand{y.data()}, Operand{}, Operand{}};
  py::array out = new_array(x.dtype(), reduction == 0 ? std::vector<py::ssize_t>(x.shape(), x.shape() + x.ndim())
                                                     : std::vector<py::ssize_t>{});
  void* data = out.mutable_data();
  {
    py::gil_scoped_release release;
    cpu::kernels().bce_with_logits_forward(args, static_cast<Reduction>(reduction), data, nullptr);
  }
  return out;
}

// The diagonal normal mixture per data set, in the torch op's layout (csrc/torch/mixture.cpp):
// C-contiguous x (sets, N, D) and loc (sets, K, D) of one dtype, the per-component terms in
// float64: log_pi and log_weight (sets, K), inv_scale (sets, K, D).
py::array normal_mixture_log_likelihood(const py::array& x, const py::array& loc, const py::array& log_pi,
                                        const py::array& log_weight, const py::array& inv_scale) {
  const auto expect = [](bool laid_out, const char* name) {
    if (!laid_out) throw py::value_error(std::string("fusedgan.numpy: internal layout error (") + name + ")");
  };
  const auto c_style = [](const py::array& a, int ndim) { return (a.flags() & py::array::c_style) && a.ndim() == ndim; };
  expect(c_style(x, 3), "x");
  const int64_t sets = x.shape(0), n = x.shape(1), d = x.shape(2);
  expect(c_style(loc, 3) && loc.dtype().is(x.dtype()) && loc.shape(0) == sets && loc.shape(2) == d, "loc");
  const int64_t k = loc.shape(1);
  const auto doubles = [&](const py::array& a, const char* name, std::vector<py::ssize_t> shape) {
    expect(c_style(a, int(shape.size())) && a.dtype().is(py::dtype::of<double>()) &&
               std::equal(shape.begin(), shape.end(), a.shape()),
           name);
    return static_cast<const double*>(a.data());
  };
  const MixtureArgs args{dtype_of(x, "x"), sets, n, k, d, x.data(), loc.data(),
                         doubles(log_pi, "log_pi", {sets, k}), doubles(log_weight, "log_weight", {sets, k}),
                         doubles(inv_scale, "inv_scale", {sets, k, d})};
  py::array out = new_array(x.dtype(), {sets});
  void* data = out.mutable_data();
  {
    py::gil_scoped_release release;
    cpu::kernels().mixture_log_likelihood(args, data);
  }
  return out;
}

}  // namespace

void add_numpy_api(py::module_& m) {
  m.def("log_likelihood", &log_likelihood, "per row of a (rows, cols) layout: the sum of log f");
  m.def("entropy", &entropy, "per row of a (rows, length) array: the entropy of probabilities or logits");
  m.def("bce_with_logits", &bce_with_logits, "binary cross-entropy with logits of two arrays of one shape");
  m.def("normal_mixture_log_likelihood", &normal_mixture_log_likelihood,
        "per data set: sum_n log sum_k pi_k N(x_n; loc_k, diag scale_k^2), in the torch op's layout");
  py::dict families;
  for (const auto& info : kFamilies) {
    py::list params, positive;
    for (int k = 0; k < param_count(info); ++k) {
      params.append(info.params[k]);
      positive.append(info.positive[k]);
    }
    families[info.name] = py::make_tuple(params, positive);
  }
  m.attr("log_likelihood_families") = families;
}

}  // namespace fusedgan
