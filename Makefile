# Every target sets itself up: a fresh machine needs only python3 (>= 3.11) and make.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test test-fast demo bench lint

$(STAMP): pyproject.toml canarygate/__init__.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# The dashboard's browser test needs Debian's chromium and chromium-driver (installed here when we may).
test: $(STAMP)
	@{ command -v chromium && command -v chromedriver; } >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && \
		command -v apt-get >/dev/null 2>&1 && (apt-get update -qq && apt-get install -y -qq chromium chromium-driver) \
		>/dev/null 2>&1; } || echo "chromium/chromedriver not available: the dashboard's browser test skips"
	$(VENV)/bin/lint-imports
	$(PY) -m pytest

# Every tier but the tests marked slow (PyInstaller builds, the demo...): what to run while working.
test-fast: $(STAMP)
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -m "not slow"

# ruff (lint and format), mypy ([tool.mypy] in pyproject.toml) and import-linter (.importlinter);
# the pre-commit hooks (.pre-commit-config.yaml) run the same tools.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

demo: $(STAMP)
	$(PY) -m sandbox.demo

# The real tier: etcd, kube-apiserver, kube-controller-manager and Flagger v1.44 built from the Go module
# proxy (needs Go 1.26+; the first run on a machine builds them: about 19 min on 2 cores, cached in
# ~/.cache/canary-gate-e2e or $$CANARYGATE_E2E_CACHE), started on 127.0.0.1, and the e2e suites run against them.
E2E_KUBECONFIG := .cache/e2e/kubeconfig
E2E_WORKERS ?= 6
E2E_TESTS ?= tests/e2e tests/sandbox/test_apiserver_crud.py tests/sandbox/test_apiserver_discovery.py \
	tests/sandbox/test_apiserver_tables.py tests/sandbox/test_apiserver_watch.py tests/sandbox/test_apiserver_auth.py \
	tests/sandbox/test_apiserver_keepalive.py tests/sandbox/test_apiserver_proxy.py tests/sandbox/test_kubectl.py \
	tests/sandbox/test_rbac.py tests/sandbox/test_deployments.py tests/packaging/test_krew_real.py
.PHONY: e2e cluster binaries-e2e
# Tests run in parallel namespaces; those that stop or hang the API server (marked disruptive) run alone after.
e2e: $(STAMP)
	mkdir -p $(dir $(E2E_KUBECONFIG))
	$(PY) -m sandbox.cluster --kubeconfig-out $(E2E_KUBECONFIG) -- bash -c '\
		$(PY) -m pytest -p no:cacheprovider -n $(E2E_WORKERS) --timeout=1200 -m "not disruptive" $(E2E_TESTS); a=$$?; \
		CANARYGATE_E2E_DISRUPTIVE=1 $(PY) -m pytest -p no:cacheprovider --timeout=1200 -m disruptive $(E2E_TESTS); b=$$?; \
		[ $$a = 0 ] && [ $$b = 0 ]'

cluster: $(STAMP)
	mkdir -p $(dir $(E2E_KUBECONFIG))
	$(PY) -m sandbox.cluster --kubeconfig-out $(E2E_KUBECONFIG)

binaries-e2e:
	sandbox/cluster/build-binaries.sh

# The sidecar's load generator is wrk when present (installed here when we may), else a Python one.
bench: $(STAMP)
	@command -v wrk >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		(apt-get update -qq && apt-get install -y -qq wrk) >/dev/null 2>&1; } || \
		echo "wrk not available: the sidecar benchmark uses its Python load generator"
	$(PY) -m benchmarks

.PHONY: binary smoke-binary release-artifacts python-dist image release-linux-amd64

# The one version (canarygate/__init__.py) and the commit, stamped into archives, manifests, image.
VERSION := $(shell sed -n 's/^__version__ = "\(.*\)"$$/\1/p' canarygate/__init__.py)
REVISION := $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
IMAGE ?= ghcr.io/canary-gate/gate-sidecar
# MAX_GLIBC=2.28: refuse a linux build that needs a newer glibc (the CI linux jobs, built on the
# manylinux_2_28 base, set it). PLATFORMS=linux/amd64,...: package only those (default: all five).
MAX_GLIBC ?=
PLATFORMS ?=
EXE := $(if $(filter Windows_NT,$(OS)),.exe,)

# dist/kubectl-gate (onefile: krew on macOS and Windows) and dist/onedir/kubectl-gate/ (onedir:
# krew on Linux, Homebrew, install.sh) for this OS and architecture (PyInstaller), also copied to
# dist/bin/kubectl-gate-<os>-<arch>[-onedir] for release-artifacts.
binary: $(STAMP)
	$(PY) -m pip install --quiet -e '.[build]'
	$(PY) packaging/build_binary.py --mode onefile --release-name
	$(PY) packaging/build_binary.py --mode onedir --release-name

# Both builds as a user runs them: version, help, completion, render, and commands against the
# sandbox API (packaging/smoke.py).
smoke-binary: $(STAMP)
	$(PY) packaging/smoke.py --sandbox dist/kubectl-gate$(EXE) dist/onedir/kubectl-gate/kubectl-gate$(EXE)

# dist/bin holds kubectl-gate-<os>-<arch>[.exe] and (not windows) kubectl-gate-<os>-<arch>-onedir/
# from every platform's CI job; writes archives, checksums.txt, the krew manifest and the formula.
release-artifacts: $(STAMP)
	$(PY) packaging/release.py --version $(VERSION) --binaries dist/bin --out dist/release \
		$(if $(PLATFORMS),--platforms $(PLATFORMS)) $(if $(MAX_GLIBC),--max-glibc $(MAX_GLIBC))

# The wheel and the sdist (dist/python), from the same version.
python-dist: $(STAMP)
	$(PY) -m pip install --quiet -e '.[build]'
	rm -rf dist/python
	$(PY) -m build --outdir dist/python .

# The sidecar image (needs a Docker engine), labelled with the version and the commit.
image:
	docker build --build-arg VERSION=$(VERSION) --build-arg REVISION=$(REVISION) \
		-t $(IMAGE):$(VERSION) .

# The release workflow's steps for linux/amd64, on this machine: the binaries, their smoke test,
# the linux/amd64 archives and krew manifest (no formula: it needs every platform), wheel and
# sdist, and the image when a Docker engine answers. Here the build is on this machine's glibc;
# CI builds on the manylinux_2_28 base and passes MAX_GLIBC=2.28.
release-linux-amd64: binary smoke-binary
	$(MAKE) release-artifacts PLATFORMS=linux/amd64
	$(MAKE) python-dist
	@if docker info >/dev/null 2>&1; then $(MAKE) image; \
	else echo "release-linux-amd64: no Docker engine answers here: image not built (CI builds it)"; fi
