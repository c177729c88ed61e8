# The two commands: `make run` and `make test`. Each sets up everything it needs.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Debian packages the running portal needs: libmagic (file types), poppler (PDF previews), OCR, fonts, Pango.
RUN_PACKAGES := libmagic1 poppler-utils fonts-dejavu-core tesseract-ocr tesseract-ocr-eng tesseract-ocr-vie \
                libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0
# And those only the tests and benchmarks need: Chromium (browser tests), wrk (bench), 7-Zip (exports open in it).
TEST_PACKAGES := chromium wrk 7zip

.PHONY: run test lint bench bench-pages load mutate install run-deps system-deps browser-deps translations messages clean

run: install run-deps translations ## set up and start the portal on http://127.0.0.1:5000 (embedded services)
	$(BIN)/portal dev

# Parallel test workers (pytest-xdist): each has its own database and Redis database (tests/conftest.py).
# worksteal: an idle worker takes tests queued for a busy one, so a few long tests do not leave one core idle.
TEST_WORKERS ?= 2

test: install system-deps browser-deps translations ## set up and run the whole test suite against real services
	$(BIN)/ruff check --quiet .
	$(BIN)/pytest -p no:cacheprovider -n $(TEST_WORKERS) --dist worksteal

lint: install
	$(BIN)/ruff check .

bench: install system-deps translations
	$(BIN)/python bench/home.py

# Each main list page against its bare twin, CPU per request (goal: at most 1.3x); bench/README.md.
bench-pages: install system-deps translations
	$(BIN)/python bench/pages.py

# The mixed load (locust, 200 users for 5 minutes), the same pages alone, then the faults one at a time: Redis
# and PostgreSQL restarted, the S3 endpoint cut for 30 s, workers killed; tests/load/README.md. On a stack of its
# own on loopback (a PostgreSQL cluster, a redis-server, a moto server), about 25 minutes with the defaults, and
# up to 20 more while a job killed with its worker waits to be taken again; shorter with LOAD_USERS=50
# LOAD_SECONDS=60 LOAD_FAULT_SECONDS=60. Reports in tests/load/reports/.
LOAD_STAMP := $(VENV)/.installed-load
load: install run-deps translations $(LOAD_STAMP) ## load and fault test; LOAD_USERS, LOAD_SECONDS (tests/load/README.md)
	$(BIN)/python tests/load/run.py

$(LOAD_STAMP): pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[embedded,dev,load]'
	touch $@

# Mutation testing (mutmut) of the modules listed under [tool.mutmut] in pyproject.toml, against the
# tests listed there; docs/mutation-testing.md. Not part of `make test`: it takes about half an hour.
# Starts afresh each time (mutants/ holds a copy of the project); lists the surviving mutants at the end
# and fails only when the tool does (e.g. the tests fail without any mutant), never because of survivors.
MUTATE_JOBS ?= 2
mutate: install run-deps ## mutation testing of the security-critical modules; lists the surviving mutants
	rm -rf mutants
	$(BIN)/mutmut run --max-children $(MUTATE_JOBS)
	@echo; echo "Mutants not killed, per module (diffs below; 'mutmut browse' to explore):"
	@$(BIN)/mutmut results
	@for m in $$($(BIN)/mutmut results | sed -n 's/^ *\([^ :]*\): survived$$/\1/p'); do \
	  echo; $(BIN)/mutmut show $$m | grep -v '^\(---\|+++\) '; done

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/python -m pip install --quiet -e '.[embedded,dev]'
	touch $(STAMP)

# What the browser tests take from npm (axe-core, tests/browser/package.json), installed from the lock file
# again whenever it is missing or the lock file is newer than the last install.
BROWSER_STAMP := tests/browser/node_modules/.installed
browser-deps: $(BROWSER_STAMP)

$(BROWSER_STAMP): tests/browser/package.json tests/browser/package-lock.json
	$(if $(shell command -v npm),,$(call apt_install,npm))
	npm ci --prefix tests/browser --no-audit --no-fund
	touch $@

# $(call apt_install,PACKAGES): install those of PACKAGES that are missing (root, or sudo otherwise).
define apt_install
	@missing=$$(for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:" $$missing; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi
endef

run-deps: ## install the missing Debian packages the running portal needs
	$(call apt_install,$(RUN_PACKAGES))

system-deps: ## install the missing Debian packages of the portal and of the tests (needs root, as on CI)
	$(call apt_install,$(RUN_PACKAGES) $(TEST_PACKAGES))

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
