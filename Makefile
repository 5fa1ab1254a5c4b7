# Two commands do all the set-up themselves:
#   make run    create/update .venv, then run the quick-start federation
#   make test   create/update .venv, then run the test suite
# TORCH pins the CPU build so the install does not pull a multi-GB CUDA wheel; override it
# (e.g. make TORCH=torch run) on machines where you want pip's default build.
PYTHON ?= python3
VENV   ?= .venv
TORCH  ?= torch==2.13.0
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.fedsim-installed

.PHONY: run test install bench clean protos

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/fedsim run examples/quickstart.yaml

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/transport.py
	$(BIN)/python benchmarks/overhead.py

protos: $(STAMP)
	$(BIN)/python -m fedsim.wire.protogen

clean:
	rm -rf $(VENV) runs .pytest_cache
