# Two commands a newcomer needs (see README.md):
#   make demo   set up .venv and run the main job on the embedded offline default
#   make test   set up .venv and run the test suite
PYTHON ?= python3
VENV ?= .venv
# A CPU build of torch keeps the set-up small; override, e.g.
#   make test TORCH_INSTALL="torch --index-url https://download.pytorch.org/whl/cpu"
TORCH_INSTALL ?= torch==2.13.0
BIN := $(VENV)/bin

.PHONY: install demo test test-slow lint format bench clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/activate setup.cfg pyproject.toml
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install --quiet $(TORCH_INSTALL)
	$(BIN)/python -m pip install --quiet -e ".[dev,demo,onnx]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/hf-lottery demo --output_dir outputs/demo

test: install
	$(BIN)/python -m pytest -q

test-slow: install
	$(BIN)/python -m pytest -q -m slow

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/lint-imports

format: install
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

bench: install
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
