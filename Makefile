# From a fresh Debian 12 clone: `make demo` builds and runs the demo, `make test` builds and runs every test.
# Both first check the Debian packages (scripts/install_deps.sh) and build into $(BUILD) (Release).
BUILD ?= build
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=

.PHONY: all deps build test test-asan demo format clean
all: build

deps:
	@scripts/install_deps.sh

build: deps
	@test -f $(BUILD)/CMakeCache.txt || cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)
	cmake --build $(BUILD) -j$(JOBS)

test: build
	ctest --test-dir $(BUILD) --output-on-failure -j$(JOBS)

# The parser, file and I/O tests under AddressSanitizer + UndefinedBehaviorSanitizer, and the fuzz corpora
# replayed (docs/RELIABILITY.md). A second full build of those libraries in $(ASAN_BUILD).
ASAN_BUILD ?= build-asan
ASAN_TESTS ?= test_io_torch_pickle test_io_safetensors test_io_npz test_io_edm_pickle test_data_readers \
  test_data_dataset test_util_image_io test_util_progress_stop test_util_seeds test_nets_options
FUZZ_TARGETS := $(patsubst tests/fuzz/fuzz_%.cpp,%,$(wildcard tests/fuzz/fuzz_*.cpp))
test-asan: deps
	@test -f $(ASAN_BUILD)/CMakeCache.txt || cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DPIDISTILL_SANITIZE=ON $(CMAKE_FLAGS)
	cmake --build $(ASAN_BUILD) -j$(JOBS) --target $(ASAN_TESTS) $(addprefix replay_,$(FUZZ_TARGETS))
	ASAN_OPTIONS=detect_leaks=0 ctest --test-dir $(ASAN_BUILD) --output-on-failure -j$(JOBS) -E '_NOT_BUILT$$'

demo: build
	scripts/demo.sh $(BUILD)

format:
	clang-format -i $$(git ls-files '*.cpp' '*.h')

clean:
	rm -rf $(BUILD)
