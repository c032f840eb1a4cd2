# Two entry points, both from a fresh clone: `make book` and `make test` (see README.md).
VENV := .venv
PYTHON := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
PROFILE ?= demo

.PHONY: book test smoke-book clean

$(INSTALLED): requirements/base.txt pyproject.toml
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install -qq -r requirements/base.txt
	$(PYTHON) -m pip install -qq --no-deps facenet-pytorch==2.6.0
	$(PYTHON) -m pip install -qq --no-deps --no-build-isolation -e .
	touch $@

book: $(INSTALLED)
	$(PYTHON) scripts/build_book.py --profile $(PROFILE) --out _build/book

smoke-book: $(INSTALLED)
	TQDM_DISABLE=1 $(PYTHON) scripts/build_book.py --profile smoke --out _build/smoke

test: smoke-book
	TQDM_DISABLE=1 $(PYTHON) -m pytest --nbval-lax tests _build/smoke/notebooks

clean:
	rm -rf _build results
