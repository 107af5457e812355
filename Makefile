# finlake: `make demo` runs the three flows on the embedded defaults, `make test` runs every test.
# Both install what they need themselves (uv, the virtual environment, pinned jars), cached after the first run.
.DEFAULT_GOAL := help
SHELL := /bin/bash
UV_VERSION := 0.13.9
UV_HOME := $(HOME)/.cache/finlake/uv
UV := $(shell command -v uv 2>/dev/null || echo $(UV_HOME)/bin/uv)
SYNCED := .venv/.finlake-synced
PYTEST := $(UV) run --frozen pytest --durations=15
# The chart and Kubernetes test tools are built with Go: the toolchain in /usr/local/go (go.dev's layout) when
# go is not on PATH, as in a non-login shell whose PATH only a profile would have extended.
export PATH := $(PATH)$(if $(shell command -v go 2>/dev/null),,:/usr/local/go/bin)

help: ## Show the targets and what they do
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(UV_HOME)/bin/uv:
	python3 -m venv $(UV_HOME)
	$(UV_HOME)/bin/pip install --quiet uv==$(UV_VERSION)

$(SYNCED): uv.lock pyproject.toml $(wildcard */pyproject.toml services/*/pyproject.toml) | $(UV)
	scripts/check-system.sh
	$(UV) sync --all-packages --frozen
	touch $@

install: $(SYNCED) ## Install uv and the virtual environment from uv.lock (jars come with `finlake stack up`)

lint: install ## ruff (lint + format check), mypy --strict on src/finlake, import-linter contracts
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .
	$(UV) run --frozen mypy
	$(UV) run --frozen lint-imports

format: install ## Apply ruff's fixes and formatting
	$(UV) run --frozen ruff check --fix .
	$(UV) run --frozen ruff format .

typecheck: install ## mypy --strict on the core library
	$(UV) run --frozen mypy

dashboard-assets: ## Vendor the dashboard's chart library from npm (cached; never a CDN)
	services/query_api/scripts/vendor_assets.sh

chart-tools: install ## Install the chart checks' tools (helm, kubeconform, helm-unittest, promtool, schemas; cached)
	$(UV) run --frozen scripts/chart-tools.sh >/dev/null

crds-sync: ## Copy manifests/crds and manifests/examples into the chart (a test fails when they drift)
	rm -f charts/finlake/crds/*.yaml charts/finlake/examples/*.yaml
	cp manifests/crds/*.yaml charts/finlake/crds/
	cp manifests/examples/*.yaml charts/finlake/examples/

helm-docs: chart-tools ## Regenerate charts/finlake/README.md from values.yaml
	$(HOME)/.cache/finlake/tools/chart-tools-1/bin/helm-docs --chart-search-root charts/finlake --template-files README.md.gotmpl

test: lint dashboard-assets k8s-tools chart-tools ## Lint, then every test: unit, integration (Kafka, registry, Spark, browser), e2e (kube-apiserver)
	$(PYTEST)

k8s-tools: ## Build/fetch etcd, kube-apiserver, kubectl and the spark-operator CRDs (cached)
	scripts/k8s-tools.sh

test-e2e: install k8s-tools ## Operator e2e tests against a real kube-apiserver + etcd
	$(PYTEST) -m e2e

test-unit: install ## Unit tests and tests/chart (no services; the first run builds the chart tools with Go and fetches the chart library with npm)
	$(PYTEST) -m "not integration and not e2e"

test-integration: install dashboard-assets ## Integration tests against the real local stack
	$(PYTEST) -m integration

demo: install dashboard-assets ## Start the local stack and run the three flows on the embedded defaults: market, alerts, transactions
	$(UV) run --frozen finlake demo

stack-up: install ## Start the local stack (Kafka, Apicurio Registry)
	$(UV) run --frozen finlake stack up

stack-down: install ## Stop the local stack (data is kept)
	$(UV) run --frozen finlake stack down

bench: install ## Benchmarks (ratios against a peer measured in the same run)
	$(UV) run --frozen python -m bench.bench_producer
	$(UV) run --frozen python bench/bench_pipeline.py
	$(UV) run --frozen python bench/bench_query_api.py
	$(UV) run --frozen python bench/bench_alerts.py
	$(UV) run --frozen python bench/bench_transactions.py

api: install dashboard-assets ## Serve the query API and the dashboard on the local lake
	$(UV) run --frozen finlake api serve

clean: ## Remove caches and build outputs (never the data under FINLAKE_HOME)
	rm -rf .mypy_cache .ruff_cache .pytest_cache .import_linter_cache test-artifacts

.PHONY: help install lint format typecheck dashboard-assets chart-tools crds-sync helm-docs k8s-tools test test-e2e test-unit test-integration demo stack-up stack-down bench api clean
