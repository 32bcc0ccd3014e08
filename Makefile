# The two commands: `make run` and `make test`. Both install what is missing first
# (apt packages, models, the ONNX Runtime library) and are quick when nothing is.

CARGO  ?= cargo
BIN    := target/release/callqa
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Build tools whisper.cpp needs. Checked by command, so nothing is installed twice.
APT_NEEDS := cmake:cmake g++:g++ python3:python3 pip3:python3-pip

.PHONY: run test setup apt-deps build models lint fmt clean-models

run: models
	$(BIN) serve

test: models lint
	$(CARGO) test --release --locked

setup: models

apt-deps:
	@missing=""; for pair in $(APT_NEEDS); do \
	  cmd=$${pair%%:*}; pkg=$${pair##*:}; \
	  command -v $$cmd >/dev/null 2>&1 || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing apt packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

build: apt-deps
	$(CARGO) build --release --locked

# Downloads, checks and converts the models (a no-op when they are installed and intact).
models: build
	$(BIN) models install

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --release --locked --all-targets -- -D warnings
