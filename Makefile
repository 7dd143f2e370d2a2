# Lathe: the two commands are `make demo` and `make test`.
BUILD ?= build
BUILD_ASAN ?= build-asan
BUILD_FUZZ ?= build-fuzz
CMAKE_FLAGS ?=

.PHONY: all deps configure build test unit unit-asan integration fuzz demo bench clean format tidy

all: build

deps:
	@bash scripts/deps.sh

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS)

configure: $(BUILD)/build.ninja

build: deps configure
	cmake --build $(BUILD)

test: deps build
	@bash scripts/test.sh

demo: deps build
	@bash scripts/demo.sh

bench: deps build
	@bash scripts/bench.sh

format:
	clang-format -i $$(git ls-files 'src/*.cc' 'src/*.h' 'fuzz/*.cc' 'bench/*.cc')

tidy: configure
	clang-tidy -p $(BUILD) $$(git ls-files 'src/*.cc' | grep -v _test.cc)

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_FUZZ)
