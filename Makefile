# Every target sets itself up: a fresh machine needs only python3 (>= 3.11) and make.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test demo bench lint

$(STAMP): pyproject.toml canarygate/__init__.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

test: $(STAMP)
	$(VENV)/bin/lint-imports
	$(PY) -m pytest

demo: $(STAMP)
	$(PY) -m sandbox.demo

# The real tier: etcd, kube-apiserver, kube-controller-manager and Flagger v1.44 built from the Go module
# proxy (needs Go 1.26+; the first run on a machine builds them: 20-40 min on 2 cores, cached in
# ~/.cache/canary-gate-e2e or $$CANARYGATE_E2E_CACHE), started on 127.0.0.1, and the e2e suites run against them.
E2E_KUBECONFIG := .cache/e2e/kubeconfig
E2E_WORKERS ?= 6
E2E_TESTS ?= tests/e2e tests/sandbox/test_apiserver_crud.py tests/sandbox/test_apiserver_discovery.py \
	tests/sandbox/test_apiserver_tables.py tests/sandbox/test_apiserver_watch.py tests/sandbox/test_apiserver_auth.py \
	tests/sandbox/test_apiserver_keepalive.py tests/sandbox/test_apiserver_proxy.py tests/sandbox/test_kubectl.py \
	tests/sandbox/test_rbac.py tests/packaging/test_krew_real.py
.PHONY: e2e cluster binaries-e2e
e2e: $(STAMP)
	mkdir -p $(dir $(E2E_KUBECONFIG))
	$(PY) -m sandbox.cluster --kubeconfig-out $(E2E_KUBECONFIG) -- \
		$(PY) -m pytest -p no:cacheprovider -n $(E2E_WORKERS) --timeout=1200 $(E2E_TESTS)

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

.PHONY: binary release-artifacts image

# dist/kubectl-gate (onefile: krew, Windows) and dist/onedir/kubectl-gate/ (onedir: Homebrew,
# install.sh) for this OS and architecture (PyInstaller); both also copied to dist/bin/.
binary: $(STAMP)
	$(PY) -m pip install --quiet -e '.[build]'
	$(PY) packaging/build_binary.py --mode onefile --release-name
	$(PY) packaging/build_binary.py --mode onedir --release-name

# VERSION=0.1.0; dist/bin holds kubectl-gate-<os>-<arch>[.exe] and (not windows)
# kubectl-gate-<os>-<arch>-onedir/ from every platform's CI job.
release-artifacts: $(STAMP)
	$(PY) packaging/release.py --version $(VERSION) --binaries dist/bin --out dist/release

# The sidecar image (needs a Docker engine).
image:
	docker build -t ghcr.io/canary-gate/gate-sidecar:$(or $(VERSION),0.1.0) .
