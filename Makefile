# The two commands a newcomer runs: `make run` (build, then a real harness run on the embedded demo
# goal) and `make test` (C++ tests + pytest for runtime, harness and regressions). Both create .venv.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BUILD := build/cmake
JOBS ?= $(shell nproc)
CMAKE_ARGS ?=
PYTEST_FLAGS ?= -q -p no:cacheprovider --import-mode=importlib

.PHONY: all venv build test test-cpp test-py lint run bench clean system-deps cudnn-headers

all: build

# Debian packages the C++ side needs (GoogleTest, ccache); skipped when present or not root.
system-deps:
	@if [ ! -f /usr/include/gtest/gtest.h ] || ! command -v ccache >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libgtest-dev ccache) >/dev/null; \
	  else echo "note: install libgtest-dev (and ccache) to build the C++ tests"; fi; \
	fi

# Headers for compiling ember's cuDNN paths (fused attention): cudnn.h, cudnn-frontend and nvrtc.h
# (the frontend includes it), taken from the pinned wheels' include/ folders into build/deps. No
# cuDNN library is installed: ember dlopens one at run time (docs/cuda.md). CMake finds them there
# (EMBER_CUDNN=AUTO); CI fetches them so the cuDNN code is compiled on every run.
CUDNN_DEPS := build/deps/cudnn
CUDNN_WHEELS := nvidia-cudnn-cu13==9.24.0.43 nvidia-cudnn-frontend==1.32.0 nvidia-cuda-nvrtc==13.0.88

cudnn-headers: $(CUDNN_DEPS)/include/.stamp

$(CUDNN_DEPS)/include/.stamp: | $(VENV)/.stamp
	rm -rf $(CUDNN_DEPS) && mkdir -p $(CUDNN_DEPS)/wheels $(CUDNN_DEPS)/include
	$(PY) -m pip download -q --no-deps --only-binary=:all: -d $(CUDNN_DEPS)/wheels $(CUDNN_WHEELS)
	$(PY) runtime/tools/wheel_headers.py $(CUDNN_DEPS)/include $(CUDNN_DEPS)/wheels/*.whl
	rm -rf $(CUDNN_DEPS)/wheels
	touch $@

$(VENV)/.stamp: requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	@# Put the in-tree packages on the venv's path (no editable install: harness worktrees must be
	@# able to shadow `ember` with their own copy via PYTHONPATH).
	@echo "$(CURDIR)/runtime/python" > "$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/ember-dev.pth"
	@echo "$(CURDIR)" >> "$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/ember-dev.pth"
	@printf '#!/usr/bin/env bash\nexec "%s" -m harness "$$@"\n' "$(CURDIR)/$(PY)" > $(VENV)/bin/harness && chmod +x $(VENV)/bin/harness
	touch $@

venv: $(VENV)/.stamp

# Configure + build the runtime in-tree: the extension lands in runtime/python/ember/.
build: venv system-deps
	@if [ ! -f $(BUILD)/build.ninja ]; then \
	  cmake -S runtime -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release -DPython_EXECUTABLE=$(CURDIR)/$(PY) \
	    -DEMBER_PYTHON_OUT=$(CURDIR)/runtime/python/ember $(CMAKE_ARGS); fi
	cmake --build $(BUILD) -j $(JOBS)

test-cpp: build
	@if [ -x $(BUILD)/ember_cpp_tests ]; then ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS); \
	else echo "C++ tests not built (GoogleTest missing)"; exit 1; fi

test-py: build
	$(PY) -m pytest $(PYTEST_FLAGS) runtime/tests/python numcheck/tests harness/tests regressions

test: test-cpp test-py

# ruff (lint + format check) and mypy on the harness; CI runs this before the tests.
lint: venv
	$(VENV)/bin/ruff check harness numcheck
	$(VENV)/bin/ruff format --check harness numcheck
	$(VENV)/bin/mypy

# Offline demo: the shipped goal played by the replay agent (see docs/harness.md).
run: build
	$(VENV)/bin/harness run

bench: build
	$(PY) bench/cpu_ops.py

clean:
	rm -rf build runtime/python/ember/_C*.so
