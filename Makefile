# Two entry points, both from a fresh clone: `make book` and `make test` (see README.md);
# `make references` after an intended change of a checked notebook output.
VENV := .venv
PYTHON := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
PROFILE ?= demo

.PHONY: book test smoke-book references directions clean

# pyproject.toml is the one list of dependencies; facenet-pytorch goes in apart, without its
# stale pins (see the comment in pyproject.toml).
$(INSTALLED): pyproject.toml
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install -qq -e ".[book,test]"
	$(PYTHON) -m pip install -qq --no-deps facenet-pytorch==2.6.0
	touch $@

book: $(INSTALLED)
	$(PYTHON) scripts/build_book.py --profile $(PROFILE) --out _build/book

SMOKE := _build/smoke
PYTEST := TQDM_DISABLE=1 $(PYTHON) -m pytest
# nbval runs the committed references in tests/notebooks/ and compares the cells marked
# `# NBVAL_CHECK_OUTPUT` (--nbval-lax), after the sanitizers' substitutions.
NBVAL := $(PYTEST) --nbval-lax --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg

smoke-book: $(INSTALLED)
	TQDM_DISABLE=1 $(PYTHON) scripts/build_book.py --profile smoke --out $(SMOKE)

# Each chapter runs once: nbval runs its reference, and the outputs it kept in $(SMOKE) are what
# jupyter-book renders and the book tests read. $(SMOKE) starts empty, so no run or checkpoint
# cached by older code is reused.
test: $(INSTALLED)
	$(PYTEST) tests --ignore=tests/book
	rm -rf $(SMOKE)
	$(NBVAL) tests/notebooks --save-executed $(SMOKE)/notebooks
	$(PYTHON) scripts/build_book.py --profile smoke --out $(SMOKE) --render-only
	$(PYTEST) tests/book

# The directions of Tables 1, 3 and 4 on demo-size training runs (tests/test_directions.py): 8 to 33
# minutes on 2 cores, and not stable across CPUs (see that file), so on demand; `make test` checks
# those that hold on short videos.
directions: $(INSTALLED)
	$(PYTEST) tests/test_directions.py --directions

# After an intended change of a checked output: rerun the chapters in the smoke profile and
# rewrite tests/notebooks/; review and commit that diff with the change (CONTRIBUTING.md).
references: $(INSTALLED)
	TQDM_DISABLE=1 $(PYTHON) scripts/refresh_references.py

# Everything the chapters and tests derive: built books, saved runs and tables, and under data/ the
# generated cohorts, feature caches and checkpoints (data/README.md stays).
clean:
	rm -rf _build results
	find data -mindepth 1 -maxdepth 1 ! -name README.md -exec rm -rf {} +
