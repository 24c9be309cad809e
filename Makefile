# The two commands of the README:
#   make book   set up, run every chapter headless (quick profile), render _build/html
#   make test   set up, run every test (unit tests, every chapter, the HTML build)
# Both create the virtual environment .venv from requirements.txt on first use.
PYTHON  ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
PROFILE ?= quick
RUNS    ?= _build/runs

.PHONY: setup chromium book test clean-notebooks

setup: $(VENV)/.installed chromium

# Debian's Chromium, for the offline browser test of the HTML (tests/test_browser.py).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else \
	    echo "note: no chromium; the browser test will be skipped (Debian/Ubuntu: sudo apt-get install chromium)"; \
	  fi; }

$(VENV)/.installed: requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11 or newer is needed, found " + sys.version'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

book: setup
	$(BIN)/python -m teachlib.book run --profile $(PROFILE) --out $(RUNS)
	$(BIN)/python -m teachlib.book build --from $(RUNS)

test: setup
	$(BIN)/python -m pytest

clean-notebooks: setup
	$(BIN)/python -m teachlib.book clean
