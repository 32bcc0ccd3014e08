# The two commands: `make run` and `make test`. Both install what is missing first
# (apt packages, models, the ONNX Runtime library) and are quick when nothing is.

CARGO  ?= cargo
BIN    := target/release/callqa
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Build tools whisper.cpp needs, and for the tests a browser (the HTML report is screenshotted)
# and a Chinese font. Checked by command or file, so nothing is installed twice.
APT_NEEDS      := cmake:cmake g++:g++ python3:python3 pip3:python3-pip
APT_TEST_NEEDS := chromium:chromium /usr/share/fonts/truetype/wqy/wqy-microhei.ttc:fonts-wqy-microhei

.PHONY: run install test test-fast test-models bench setup apt-deps apt-test-deps client-venv build models lint fmt clean-models

run: models
	$(BIN) serve --metrics-addr $${CALLQA_METRICS_ADDR:-127.0.0.1:9464}

# The binary on the PATH (~/.local/bin, or PREFIX/bin), with its models installed.
PREFIX ?= $(HOME)/.local
install: models
	install -D -m 755 $(BIN) $(PREFIX)/bin/callqa
	@echo "installed $(PREFIX)/bin/callqa"

# The tests that need no model run first (seconds); the ones on the real models follow.
test: lint test-fast test-models

test-fast: apt-deps
	$(CARGO) test --release --locked --lib --bins --test layout

test-models: models apt-test-deps client-venv
	$(CARGO) test --release --locked --test '*'

# Every benchmark figure in one run (issue 8): batch against faster-whisper, throughput, and
# streaming latency and memory. Sets the faster-whisper peer up first.
bench: models
	bash benches/peer/setup.sh
	$(BIN) bench all

setup: models

# Installs the packages of $(1) ("command-or-path:package" pairs) that are missing.
define apt_install
	@missing=""; for pair in $(1); do \
	  check=$${pair%%:*}; pkg=$${pair##*:}; \
	  case $$check in /*) [ -e $$check ] ;; *) command -v $$check >/dev/null 2>&1 ;; esac \
	    || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing apt packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi
endef

apt-deps:
	$(call apt_install,$(APT_NEEDS))

apt-test-deps:
	$(call apt_install,$(APT_TEST_NEEDS))

# A Python gRPC client for the tests (grpcio + reflection), pinned; made once.
CLIENT_VENV := target/client-venv
client-venv: apt-deps
	@$(CLIENT_VENV)/bin/python -c "import grpc, grpc_reflection" 2>/dev/null || { \
	  python3 -m venv $(CLIENT_VENV) && \
	  $(CLIENT_VENV)/bin/pip install -q --only-binary=:all: -r tests/client/requirements.txt; }

build: apt-deps
	$(CARGO) build --release --locked

# Downloads, checks and converts the models (a no-op when they are installed and intact).
models: build
	$(BIN) models install

lint: apt-deps
	$(CARGO) fmt --check
	$(CARGO) clippy --release --locked --all-targets -- -D warnings
