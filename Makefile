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

demo: build
	@scripts/install-deps.sh --dataset
	$(BIN) demo --output $(DEMO_DIR)

clean:
	rm -rf .build runs
