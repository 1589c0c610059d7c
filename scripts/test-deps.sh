#!/usr/bin/env bash
# Installs what the test suite needs beyond Go, if missing: SoftHSM2 for the
# PKCS#11 signer tests, and Node.js with npm plus tuf-js (from its pinned
# package-lock.json) for the differential test in internal/difftest.
# (PostgreSQL is found or started by internal/pgtest; its binaries must be
# installed: on Debian, apt-get install postgresql.)
set -euo pipefail

cd "$(dirname "$0")/.."

missing=()
command -v softhsm2-util >/dev/null 2>&1 || missing+=(softhsm2)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
# The docker CLI (no engine) for cmd/docker-signet's plugin tests.
command -v docker >/dev/null 2>&1 || missing+=(docker.io)
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
		echo "test-deps: missing and cannot be installed here: ${missing[*]} (install these packages)" >&2
		exit 1
	fi
	echo "test-deps: installing ${missing[*]}" >&2
	apt-get update -qq >/dev/null
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# tuf-js 5 needs Node.js >= 20.17 (Debian 12's own nodejs is 18: use the
# NodeSource or a newer Debian package there).
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
	echo "test-deps: Node.js $(node --version) is too old for tuf-js (internal/difftest needs >= 20.17)" >&2
	exit 1
fi

# tuf-js, the reference TypeScript TUF client (internal/difftest/js). The
# test runs npm ci by itself when node_modules is missing; doing it here
# keeps the download out of the timed test run.
if [ ! -f internal/difftest/js/node_modules/tuf-js/package.json ]; then
	echo "test-deps: installing tuf-js (npm ci in internal/difftest/js)" >&2
	(cd internal/difftest/js && npm ci --no-audit --no-fund --loglevel=error)
fi
