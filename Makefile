# The two commands of the README, and the build variants behind them.
#   make run    install what is missing, build, start the server with a demo
#   make test   install what is missing, build, run every test (but the long ones)
# Other targets: build, asan (tests in an ASan+UBSan build), tsan (the end-to-end
# tests in a ThreadSanitizer build), test-long (the `long` suite: crash trials, the
# README's commands in a fresh Debian 12 root, every bench/ script with small sizes),
# bench, fuzz, clean.
BUILD   ?= build
ASAN    ?= build-asan
TSAN    ?= build-tsan
JOBS    ?= $(shell nproc)
CMAKE_FLAGS ?=
ifeq ($(CI),true)
CMAKE_FLAGS += -DTHEATER_WERROR=ON
endif

.PHONY: all deps build run test test-long asan test-asan tsan bench fuzz clean

all: build

deps:
	@bash scripts/install-deps.sh

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

run: build
	bash scripts/demo.sh $(BUILD)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) -LE long

# Crash trials, soaks, the fresh-Debian run and other long runs (CTest label `long`).
test-long: build
	cd $(BUILD) && THEATER_LONG=1 ctest --output-on-failure -L long

asan: deps
	cmake -S . -B $(ASAN) -DCMAKE_BUILD_TYPE=Debug -DTHEATER_SANITIZE=ON $(CMAKE_FLAGS) >/dev/null
	cmake --build $(ASAN) -j $(JOBS)
	cd $(ASAN) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		ctest --output-on-failure -j $(JOBS) -LE long

test-asan: asan

# The end-to-end tests (a real server: HTTP threads, workers, the flusher) under
# ThreadSanitizer; a data race fails the test (halt_on_error). libmicrohttpd,
# libcurl and SQLite are not instrumented: races inside them are not seen.
tsan: deps
	cmake -S . -B $(TSAN) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTHEATER_TSAN=ON $(CMAKE_FLAGS) >/dev/null
	cmake --build $(TSAN) -j $(JOBS)
	cd $(TSAN) && TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$(CURDIR)/tests/tsan.supp" \
		ctest -L e2e --output-on-failure -j $(JOBS)

bench: build
	bash bench/run.sh $(BUILD)

# The libFuzzer target over the WebAssembly decoder/validator/instantiator
# (clang, ASan+UBSan); FUZZ_SECONDS limits the run.
fuzz: deps
	bash tests/fuzz/run.sh $(FUZZ_SECONDS)

clean:
	rm -rf $(BUILD) $(ASAN) $(TSAN)
