# `make demo` and `make test` set everything up from a fresh clone: a virtual environment
# in .venv with torch and the build tools, then this package built against that torch.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
NVCC ?= nvcc
CUDA_FLAGS := -std=c++17 -O3 -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 -gencode arch=compute_90,code=compute_90

.PHONY: install demo test bench docs cuda-check gpu-check clean

$(VENV)/.requirements: requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

# The development build: with the CUDA simulator, which the tests run csrc/cuda's kernels on.
install: $(VENV)/.requirements
	FUSEDGAN_CUDA_SIMULATOR=ON $(PY) -m pip install -q --no-build-isolation --no-deps .

# trains the default GAN (ring8) and prints its metrics and the paths of its pictures
demo: install
	$(VENV)/bin/fusedgan train --dataset ring8 --seed 0 --out runs/ring8

test: install
	$(PY) -m pytest -q

# Every benchmark script, a plot of each, then docs/benchmarks.md (with the targets table) and
# the README's headline figures from the results.
bench: install
	$(PY) -m pip install -q matplotlib
	for script in benchmarks/bench_*.py; do $(PY) $$script || exit 1; done
	$(PY) benchmarks/plot_results.py
	$(PY) benchmarks/report.py

# The parts of docs/api.md that come from the code (the families, the fit routines).
docs: install
	$(PY) docs/generate.py

# Compiles every CUDA kernel for sm_80 and sm_90 (as the build does) plus a PTX target: needs nvcc
# only, no GPU, no CUDA torch.
cuda-check:
	@for f in csrc/cuda/*.cu; do \
	  echo "nvcc $$f"; $(NVCC) $(CUDA_FLAGS) -c $$f -o /dev/null || exit 1; \
	done

# The check of a machine with a CUDA GPU (docs/gpu-check.md): builds the CUDA kernels against
# the torch of $(PYTHON) (no .venv, no network), then the device tests, the test suite,
# compute-sanitizer and short GPU benchmarks; logs, results and summary.md go to OUT.
OUT ?= gpu-check-out
gpu-check:
	$(PYTHON) tools/gpu_check.py --out $(OUT)

clean:
	rm -rf build
