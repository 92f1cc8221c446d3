# novanet build / test entry points.
#
#   make deps   install missing system packages (apt) and node modules (npm ci)
#   make build  compile TypeScript to dist/
#   make test   deps + build, then formatting and lint, types, and the whole vitest
#               suite (starts its own private MariaDB; set NOVANET_TEST_MYSQL_URL to use another)
#   make bench  deps + build, then the benchmark runner
#   make demo   deps + build, then the lab demo (root; network namespaces only)

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
# deps must finish before build, even under make -j
.NOTPARALLEL:

# NAME=VERSION pins a version: the OSC test checks novanet against that client's requests.
APT_PACKAGES := mariadb-server mariadb-client galera-4 rsync iproute2 iptables dnsmasq-base \
                nftables iputils-arping iputils-ping busybox conntrack procps dnsmasq-utils ndisc6 isc-dhcp-client \
                python3-openstackclient=6.0.0-4

.PHONY: all deps apt-deps npm-deps build test bench demo

all: build

deps: apt-deps npm-deps

# Install only the packages that are missing; `apt-get update` at most once.
# Works as root without sudo; uses sudo only when not root and sudo exists.
apt-deps:
	@if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then \
	  for cmd in mariadbd mariadb-install-db; do \
	    if ! command -v $$cmd >/dev/null 2>&1 && [ ! -x /usr/sbin/$$cmd ] && [ ! -x /usr/bin/$$cmd ]; then \
	      echo "deps: no apt-get/dpkg here and $$cmd is missing; install MariaDB server yourself" >&2; exit 1; \
	    fi; \
	  done; \
	  echo "deps: not a Debian system, skipping apt packages"; exit 0; \
	fi; \
	missing=""; \
	for spec in $(APT_PACKAGES); do \
	  pkg="$${spec%%=*}"; \
	  installed="$$(dpkg-query -W -f='$${Status} $${Version}' "$$pkg" 2>/dev/null || true)"; \
	  case "$$installed" in \
	    "install ok installed "*) [ "$$spec" = "$$pkg" ] || [ "$${installed##* }" = "$${spec#*=}" ] || missing="$$missing $$spec" ;; \
	    *) missing="$$missing $$spec" ;; \
	  esac; \
	done; \
	if [ -z "$$missing" ]; then echo "deps: system packages present"; exit 0; fi; \
	if [ "$$(id -u)" -eq 0 ]; then SUDO=""; \
	elif command -v sudo >/dev/null 2>&1; then SUDO="sudo"; \
	else echo "deps: need root (or sudo) to install:$$missing" >&2; exit 1; fi; \
	echo "deps: installing$$missing"; \
	$$SUDO apt-get update; \
	$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing </dev/null

# npm ci only when node_modules is missing or package-lock.json changed since.
npm-deps:
	@command -v npm >/dev/null 2>&1 || { echo "deps: node/npm not found (need Node >= 20)" >&2; exit 1; }
	@if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then \
	  echo "deps: npm ci"; npm ci; \
	else echo "deps: node_modules up to date"; fi

build:
	npm run build

# Formatting and lint first (Biome, seconds; `npm run format` fixes what it can), then
# the types (vitest only strips them). The last line is the plain "N passed, N failed"
# summary CI reads.
test: deps build
	npm run lint
	npm run typecheck
	npx vitest run --reporter=default --reporter=json --outputFile=.vitest-report.json
	@node -e "const r = require('./.vitest-report.json'); console.log(r.numPassedTests + ' passed, ' + r.numFailedTests + ' failed')"

# The main job on the embedded default (SQLite) inside a lab of network namespaces.
demo: deps build
	node dist/tools/demo.js

bench: deps build
	node dist/bench/run.js
