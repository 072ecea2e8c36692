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

.PHONY: all deps build test selftest bench demo clean

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

selftest: build
	$(BIN) selftest --device cpu

bench: build
	$(BIN) bench ops --device cpu

# Incremental training of the seed CNN family (3 conv sub-networks) on Fashion-MNIST, with
# look-ahead, against the full network trained from scratch under the same budget.
DEMO_FLAGS ?= --model cnn --filters 16,32,64 --hidden 128 --optimizer adam \
	--train-limit 12000 --max-epochs 10 --window 2 --gamma 0.8 --lookahead-epochs 1 --baseline

demo: build
	@scripts/install-deps.sh --dataset
	$(BIN) grow --data /usr/share/datasets/fashion-mnist $(DEMO_FLAGS) --output $(DEMO_DIR)

clean:
	rm -rf .build runs
