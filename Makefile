# The two commands a new machine needs: `make run` and `make test`. Both install what is missing
# (scripts/install-deps), then build with CMake and Ninja.
BUILD_DIR ?= build
JOBS ?= 2

.PHONY: all deps build test test-sanitized run clean format

all: build

deps:
	@bash scripts/install-deps

build: deps
	@cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo > /dev/null
	@cmake --build $(BUILD_DIR) -j $(JOBS)

test: build
	@ctest --test-dir $(BUILD_DIR) --output-on-failure --timeout 300 -j $(JOBS)

# The same tests in build-asan/, built with AddressSanitizer + UndefinedBehaviorSanitizer; any
# sanitizer report, also from a child process of a passing test, fails (scripts/test-sanitized).
test-sanitized: deps
	@JOBS=$(JOBS) bash scripts/test-sanitized

run: build
	@bash scripts/run-demo $(BUILD_DIR)

format:
	@git ls-files '*.cc' '*.h' '*.cpp' | xargs clang-format -i

clean:
	@rm -rf $(BUILD_DIR) .run
