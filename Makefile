# kvsync — see README.md. Every target works on a fresh Debian machine after `make deps` (as root).
SHELL := /bin/bash
GO ?= go
# staticcheck, pinned: make lint runs it through the Go module proxy (no install step needed).
STATICCHECK_VERSION := v0.8.2
export DATABASE_URL ?= $(shell scripts/db.sh url)

.PHONY: help deps build run test lint fmt bench chaos db-up db-down db-reset migrate psql

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

deps: ## install PostgreSQL 15, pg_cron, pgTAP, PL/sh, plpgsql_check, curl, the pg_net stand-in (root) and the npm tools
	scripts/install-deps.sh

build: ## build bin/kvsync, bin/kiotviet-fake and bin/kvsync-bench
	$(GO) build -o bin/ ./cmd/...

run: ## the local demo: database, migrations, fake KiotViet, kvsync serve
	scripts/run.sh

test: ## Go tests, fuzz smoke run and pgTAP against the test cluster
	scripts/test.sh

DENO ?= tools/node_modules/.bin/deno
TS := supabase/functions tools/invoke.ts

lint: ## gofmt check, go vet, staticcheck, go mod tidy, the shipped binary free of the fake and the test kit, deno fmt/lint/check of the forwarders, supabase db lint (plpgsql_check) of the migrations
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...
	@$(GO) mod tidy -diff >/dev/null || { echo "go.mod/go.sum are not tidy: run go mod tidy"; exit 1; }
	@bad=$$($(GO) list -deps ./cmd/kvsync | grep -E '/internal/(kiotvietfake|synctest|bench|testdb)$$' || true); \
	  if [ -n "$$bad" ]; then echo "cmd/kvsync must not link what only tests or measures it:"; echo "$$bad"; exit 1; fi
	@[ -x $(DENO) ] || { echo "Deno is missing: run scripts/install-deps.sh"; exit 1; }
	$(DENO) fmt --check --quiet $(TS)
	$(DENO) lint --quiet $(TS)
	$(DENO) check --quiet supabase/functions/*/index.ts supabase/functions/_tests/*.ts
	cd tools && ./node_modules/.bin/deno check --quiet invoke.ts
	scripts/db-lint.sh

fmt: ## gofmt the tree and deno fmt the forwarders
	gofmt -w $$(git ls-files '*.go')
	$(DENO) fmt --quiet $(TS)

bench: ## kvsync against the earlier system's algorithm and the API floor
	scripts/bench.sh

chaos: ## many runs under injected faults and killed workers; fails on any mismatch
	scripts/chaos.sh

db-up: ## start the development database (port 54329)
	@scripts/db.sh up

db-down: ## stop the development database
	@scripts/db.sh down

db-reset: ## stop the development database and delete its data
	@scripts/db.sh reset

migrate: ## apply supabase/migrations to $$DATABASE_URL (default: the development database)
	$(GO) run ./cmd/kvsync migrate

psql: ## psql on the development database
	scripts/db.sh psql
