# Two commands do all set-up on a fresh machine: `make demo` and `make test`; `make docs` builds the site.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench docs mutate mutate-results clean

$(STAMP): setup.cfg pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m physrl.training.demo

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --durations=15

bench: $(STAMP)
	$(BIN)/physrl bench

docs: $(STAMP)
	$(BIN)/python -m sphinx -W --keep-going -n -b html docs docs/_build/html
	@echo "open docs/_build/html/index.html"

# Mutation testing (docs/development.md), not part of `make test`: mutmut over the modules listed in
# pyproject.toml's [tool.mutmut], in a copy under build/mutate. `make mutate MUTANTS='physrl.agents.*'`
# runs a subset (mutmut's name globs); `make mutate-results` lists the survivors of the last run.
MUTATE := build/mutate
MUTANTS ?=
mutate: $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[mutate]"
	rm -rf $(MUTATE) && mkdir -p $(MUTATE)/src/physrl
	cp -r envs agents training $(MUTATE)/src/physrl/
	cp -r tests pyproject.toml leaderboard $(MUTATE)/
	cd $(MUTATE) && OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 ../../$(BIN)/mutmut run --max-children 2 $(MUTANTS)
	cd $(MUTATE) && ../../$(BIN)/mutmut results

mutate-results:
	cd $(MUTATE) && ../../$(BIN)/mutmut results

clean:
	rm -rf $(VENV) build *.egg-info docs/_build
