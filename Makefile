# The kit's two commands (see README):  make demo   and   make test
# Both create the project's virtual environment (.venv) on first use and reinstall it when
# requirements.txt or pyproject.toml change. The `install` target below is the one place the install steps
# are written.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# Quiet CI logs; a progress bar refreshed every few seconds is plenty in a log file.
export TQDM_MININTERVAL ?= 5

.PHONY: install git-filter demo book test test-fast nbval-reference readme-results clean-outputs

install: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	# sam2 builds against the torch above (no build isolation: no second torch download);
	# SAM2_BUILD_CUDA=0 skips its optional CUDA extension (the kit does not need it).
	SAM2_BUILD_CUDA=0 $(PY) -m pip install --quiet --no-build-isolation sam2==1.1.0
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	# a `python3` Jupyter kernel that runs inside this environment
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (fvos kit)"
	$(MAKE) --no-print-directory git-filter
	touch $(STAMP)

# Git's nbstripout filter that .gitattributes names, in the repository's own git config, so that notebooks
# are staged without outputs; nothing outside a git checkout (a copied folder, an unpacked archive).
# --keep-id: nbstripout would renumber the committed cell ids, and every notebook would show as changed.
git-filter:
	if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then \
		$(PY) -m nbstripout --install --attributes .gitattributes && \
		git config --local filter.nbstripout.clean '"$(abspath $(PY))" -m nbstripout --keep-id'; fi

# The main job: the FVOS pipeline on the embedded default (synthetic mini-MOSE, CPU).
demo: $(STAMP)
	$(VENV)/bin/fvos pipeline params/demo.yaml

# The executed run as a static HTML book, outputs/$(RUN)/book/index.html (nothing is executed again):
# make book after make demo, or make book RUN=name for another run.
RUN ?= demo
book: $(STAMP)
	$(VENV)/bin/fvos book --run $(RUN)

# All tests (unit, property, notebooks through papermill); .ci/run calls exactly this.
test: $(STAMP)
	$(PY) -m pytest

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow and not notebook"

# Maintainers: copy the demo run's FVOS steps table into README.md (the demo itself writes no tracked
# file); run after `make demo`, then commit README.md.
readme-results: $(STAMP)
	$(VENV)/bin/fvos report --run demo --update-readme

# Rewrite tests/nbval/ (the executed copies whose checked outputs pin key numbers); commit the result.
nbval-reference: $(STAMP)
	$(PY) -c "from fvos_utils.data.testing import write_nbval_references; write_nbval_references()"

clean-outputs:
	find outputs -mindepth 1 ! -name .gitkeep -delete
