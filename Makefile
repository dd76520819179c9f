# Two commands: `make demo` and `make test`. Both build .venv from the pinned requirements first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: demo test lint check browser venv services stop bench clean

venv: $(INSTALLED)

$(INSTALLED): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	DJANGO_SETTINGS_MODULE=gateway.settings.local $(BIN)/python manage.py i18n_compile
	touch $(INSTALLED)

demo: venv
	$(BIN)/python -m gateway.demo

lint: venv
	$(BIN)/ruff check .
	$(BIN)/lint-imports

check: venv
	DJANGO_SETTINGS_MODULE=gateway.settings.test $(BIN)/python manage.py check --fail-level WARNING
	DJANGO_SETTINGS_MODULE=gateway.settings.test $(BIN)/python manage.py makemigrations --check --dry-run

browser:
	bash scripts/ensure-browser.sh

test: lint check browser
	$(BIN)/python -m pytest

services: venv
	$(BIN)/python -m gateway.embedded start

stop: venv
	$(BIN)/python -m gateway.embedded stop

bench: venv
	$(BIN)/python bench/stamping.py

clean: stop
	rm -rf .data
