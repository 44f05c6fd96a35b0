# Three commands: `make setup`, `make test`, `make demo`.
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_DIR ?= runs/demo

.PHONY: setup test demo bench clean

setup:
	@bash scripts/setup.sh

test:
	$(PY) -m pytest -q

demo:
	$(PY) train/run.py --dataset synthgesture --config train/configs/demo.yaml --out $(DEMO_DIR)
	$(PY) export/to_netx.py --run $(DEMO_DIR) --out $(DEMO_DIR)/model.net
	$(PY) -m lava_runtime run --net $(DEMO_DIR)/model.net --dataset synthgesture --split test --samples 32 --report $(DEMO_DIR)/report.json

clean:
	rm -rf runs .cache .pytest_cache
