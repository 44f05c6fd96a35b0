# Three commands: `make setup`, `make test`, `make demo`.
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_DIR ?= runs/demo

.PHONY: setup test demo bench clean

# PYTHON=3.10 (or a path to a python) picks the Python: 3.10, 3.11 or 3.12; the default is the newest found.
setup:
	@VENV=$(VENV) bash scripts/setup.sh

# pytest exits 5 when it collected no test: that is a failure here, not a pass.
# PYTEST_ARGS picks tests or options, e.g. make test PYTEST_ARGS="tests/test_pipeline.py -x".
PYTEST_ARGS ?=
test:
	@$(PY) -m pytest -q $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: no tests were collected" >&2; exit 1; fi; exit $$rc

demo:
	$(PY) train/run.py --dataset synthgesture --config train/configs/demo.yaml --out $(DEMO_DIR)
	$(PY) export/to_netx.py --run $(DEMO_DIR) --out $(DEMO_DIR)/model.net --onnx --nir
	$(PY) -m lava_runtime run --net $(DEMO_DIR)/model.net --dataset synthgesture --split test --samples 110 --report $(DEMO_DIR)/report.json

clean:
	rm -rf runs .cache .pytest_cache
