# Strata: the two commands of the README.
#   make demo   installs what is missing, builds, and runs the main job on a default dataset
#   make test   installs what is missing, builds, and runs the test suite
SWIFT ?= swift
CONFIG ?= release
# One set of flags for every target, so `make test` and `make demo` share one build.
# -enable-testing lets the test targets `@testable import` the optimised modules.
BUILD_FLAGS = -c $(CONFIG) -Xswiftc -enable-testing
BIN = .build/$(CONFIG)/strata
DEMO_DIR ?= runs/demo

# CUDA comes from NVIDIA's PyPI wheels into a prefix outside the tree (scripts/install-cuda.sh).
# CUDA_VERSION=12 builds against the -cu12 wheels (Pascal/Volta) in a build folder of its own.
CUDA_VERSION ?= 13
CUDA_PREFIX ?= $(or $(STRATA_CUDA_PREFIX),$(HOME)/.cache/strata/cuda$(CUDA_VERSION))
CUDA_BUILD = .build-cuda$(filter-out 13,$(CUDA_VERSION))
CUDA_ENV = PKG_CONFIG_PATH=$(CUDA_PREFIX)/lib/pkgconfig
CUDA_FLAGS = --traits CUDA --build-path $(CUDA_BUILD) -Xlinker -rpath -Xlinker $(CUDA_PREFIX)/lib

.PHONY: all deps build test selftest bench bench-compare bench-precision-accuracy bench-search-compare report-check demo clean cuda build-cuda test-cuda dist-cuda gpu-check fuzz kill-resume

all: build

deps:
	@scripts/install-deps.sh

build: deps
	$(SWIFT) build $(BUILD_FLAGS) --product strata

# Numeric tests run optimised: gradient checks and training steps are too slow in debug on 2 cores.
test: deps
	$(SWIFT) build $(BUILD_FLAGS) --build-tests
	$(SWIFT) test $(BUILD_FLAGS) --skip-build
	$(BIN) selftest --device cpu
	scripts/bad-input-cases.sh $(BIN)
	scripts/quickstart-check.py $(BIN)   # the README's quickstart, in tiny form

selftest: build
	$(BIN) selftest --device cpu

bench: build
	$(BIN) bench ops --device cpu

# Every report (search, hpo, reuse-report, grow) from tiny runs, in headless chromium at 1200 px:
# fails on console messages or on anything wider than the page; screenshots in REPORT_SHOTS.
REPORT_SHOTS ?= /tmp/report-shots
report-check: build
	@scripts/install-deps.sh --dataset
	STRATA=$(BIN) scripts/report-check.sh $(REPORT_SHOTS)

# Strata against PyTorch (NCHW and channels-last) on the CPU, interleaved per model and batch
# size, medians of COMPARE_ROUNDS rounds and the ratios (bench/compare.sh). PYTHON names a
# Python that has torch; without one it prints a SKIP line. PRECISION=fp32,bf16 (the default;
# fp32, bf16, fp16 or a list) adds `--precision bf16` against torch.autocast per precision
# (COMPARE_COMPILE=cpu|cuda adds torch.compile arms; the script's header has the rest).
COMPARE_ROUNDS ?= 3
bench-compare: build
	bench/compare.sh $(COMPARE_ROUNDS)

# bf16 against FP32 test accuracy, 3 seeds each: the demo cnn on Fashion-MNIST and ResNet-20 on
# the CIFAR-10 subset (DATA=dir overrides /work/shared/datasets/cifar10-subset); one markdown
# table against issue 25's 0.3-point bound (bench/precision-accuracy.sh; 15-35 min on 2 cores).
bench-precision-accuracy: build
	@scripts/install-deps.sh --dataset
	STRATA=$(BIN) bench/precision-accuracy.sh $(if $(DATA),--data $(DATA))

# The seed-000 search against the stack its users run today (bench/search-compare/README.md):
# Ray Tune + PyTorch (defaults, and reuse_actors=True) and `strata search --reuse none|paper|
# best-prefix` on one space, interleaved over ROUNDS, as one markdown table. PYTHON names a Python
# with torch and ray[tune]; without one it prints a SKIP line. RESULTS=file also writes the table:
#   make bench-search-compare PYTHON=~/.cache/strata/search-compare-venv/bin/python RESULTS=bench/search-compare/RESULTS.md
ROUNDS ?= 2
bench-search-compare: build
	ROUNDS=$(ROUNDS) bench/search-compare/run.sh

# Incremental training of the seed CNN family (3 conv sub-networks) on Fashion-MNIST, with
# look-ahead, against the full network trained from scratch under the same budget.
DEMO_FLAGS ?= --model cnn --filters 16,32,64 --hidden 128 --optimizer adam \
	--train-limit 12000 --max-epochs 10 --window 2 --gamma 0.8 --lookahead-epochs 1 --baseline

# libFuzzer (+ AddressSanitizer) on every reader of user files, FUZZ_RUNS inputs each from the
# seed corpus in fuzz/corpus (a separate package: not in the default build or tests).
FUZZ_RUNS ?= 100000
fuzz: deps
	fuzz/run.sh $(FUZZ_RUNS)

demo: build
	@scripts/install-deps.sh --dataset
	$(BIN) grow --data /usr/share/datasets/fashion-mnist $(DEMO_FLAGS) --output $(DEMO_DIR) --overwrite  # a rerun replaces the demo run

# SIGKILLs (every third: SIGTERMs) train and grow runs at random moments (some mid-write), then
# stops searches by SIGTERM or by SIGKILLing one worker alone, resumes them all, and compares with
# uninterrupted runs; KILLS=50 and SEARCH_KILLS=8 by default. Needs strace and the CIFAR-10 subset (DATA=...).
KILLS ?= 50
SEARCH_KILLS ?= 8
kill-resume: build
	@command -v strace >/dev/null || apt-get install -y strace
	SEARCH_KILLS=$(SEARCH_KILLS) scripts/kill-resume.sh $(KILLS)

# Strata checkpoints into their PyTorch twins with strict=True, test loss and accuracy against
# `strata eval` (bench/torch/strict_load.py; trains nothing; a SKIP line without torch):
#   make bench-strict-load CHECKPOINTS="runs/a/last.safetensors ..." DATA=cifar-dir PYTHON=/path/to/python
bench-strict-load: build
	@[ -n "$(CHECKPOINTS)" ] || { echo 'bench-strict-load: CHECKPOINTS="runs/x/last.safetensors ..." DATA=cifar-dir'; exit 2; }
	STRATA=$(BIN) $(or $(PYTHON),python3) bench/torch/strict_load.py $(CHECKPOINTS) $(if $(DATA),--data $(DATA))

cuda:
	scripts/install-cuda.sh --cuda $(CUDA_VERSION) --prefix $(CUDA_PREFIX)

# Compiles and links the CUDA backend and runs the tests that need no GPU (error paths, NVRTC
# compiling every kernel, the cross-device harness).
test-cuda: deps cuda
	$(CUDA_ENV) $(SWIFT) build $(CUDA_FLAGS) --build-tests
	LD_LIBRARY_PATH=$(CUDA_PREFIX)/lib $(SWIFT) test $(CUDA_FLAGS) --skip-build --filter 'CUDAErrorTests|CUDAMemoryTests|CUDALayoutTests|CUDAKernelHostTests|CrossDeviceTests|CUDANVRTCTests|StagingRingTests|KernelCacheTests|MultiTensorTableTests|CUDAPrecisionTests|ReducedRoundingTests'

# A stripped binary with the CUDA trait and a static Swift runtime, for a GPU machine without
# Swift: dist/cuda/strata is a wrapper that finds the CUDA libraries there (scripts/dist-cuda-wrapper.sh).
dist-cuda: deps cuda
	$(CUDA_ENV) $(SWIFT) build -c release --static-swift-stdlib $(CUDA_FLAGS) --product strata
	rm -rf dist/cuda && mkdir -p dist/cuda/bin dist/cuda/lib
	cp $(CUDA_BUILD)/release/strata dist/cuda/bin/ && strip dist/cuda/bin/strata
	# oneDNN (the CPU convolutions, also the reference of `selftest --device cuda`), opened at
	# run time, with the two libraries it needs that a GPU machine may lack.
	for lib in libdnnl.so.2 libgomp.so.1 libOpenCL.so.1; do cp -L /usr/lib/x86_64-linux-gnu/$$lib dist/cuda/lib/; done
	major=$$(sed -n 's/^Version: \([0-9]*\)\..*/\1/p' $(CUDA_PREFIX)/lib/pkgconfig/ccuda.pc); \
	  sed "s/@MAJOR@/$$major/g" scripts/dist-cuda-wrapper.sh > dist/cuda/strata && chmod +x dist/cuda/strata

# The one-command GPU check (README): run on the GPU machine, with dist/cuda from `make dist-cuda`
# carried over; needs no Swift. OUT and STRATA_CHECK_DATA are passed through the environment.
gpu-check:
	scripts/gpu-check.sh

clean:
	rm -rf .build .build-cuda .build-cuda12 runs dist
