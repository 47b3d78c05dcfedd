# Two commands do all set-up on a fresh Debian machine: `make demo` and `make test`.
SHELL := /bin/bash
PY := .venv/bin/python
VENV_STAMP := .venv/.installed
APT_PACKAGES := bubblewrap dataset-fashion-mnist

.PHONY: setup demo test test-fast lint bench validate solutions clean

$(VENV_STAMP): pyproject.toml
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	  if [ -n "$$missing" ]; then \
	    echo "apt: installing$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  fi; \
	fi
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[grader,dask,dev]'
	touch $(VENV_STAMP)

setup: $(VENV_STAMP)

demo: $(VENV_STAMP)
	PATH="$$PWD/.venv/bin:$$PATH" $(PY) -m autograder.demo

test: $(VENV_STAMP)
	PATH="$$PWD/.venv/bin:$$PATH" $(PY) -m pytest -q --strict-markers --durations=15

# Everyday loop (under 2 minutes on 2 cores): everything not marked slow.
test-fast: $(VENV_STAMP)
	PATH="$$PWD/.venv/bin:$$PATH" $(PY) -m pytest -q --strict-markers -m "not slow"

lint: $(VENV_STAMP)
	.venv/bin/ruff check autograder tests bench
	.venv/bin/ruff format --check autograder tests bench
	.venv/bin/mypy

validate: $(VENV_STAMP)
	PATH="$$PWD/.venv/bin:$$PATH" .venv/bin/autograder validate lab4-cnn
	PATH="$$PWD/.venv/bin:$$PATH" .venv/bin/autograder validate cnn-intro

solutions: $(VENV_STAMP)
	for a in lab4-cnn cnn-intro; do PATH="$$PWD/.venv/bin:$$PATH" .venv/bin/autograder solutions $$a --out solutions || exit 1; done

# Class scale: 30 distinct Lab 4 submissions, nbgrader vs autograder -j 2 vs the floor
# (about 7 minutes on 2 cores for one run; BENCH_ARGS="--n 30 --runs 3" for medians, 20 minutes).
BENCH_ARGS ?= --n 30 --runs 1
bench: $(VENV_STAMP)
	PATH="$$PWD/.venv/bin:$$PATH" $(PY) bench/bench_nbgrader.py $(BENCH_ARGS)

clean:
	rm -rf .venv demo-out .pytest_cache
