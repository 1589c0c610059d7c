#!/usr/bin/env bash
# Installs what the test suite needs beyond Go, if missing: SoftHSM2 for the
# PKCS#11 signer tests. (PostgreSQL is found or started by internal/pgtest;
# its binaries must be installed: on Debian, apt-get install postgresql.)
set -euo pipefail

if command -v softhsm2-util >/dev/null 2>&1; then
	exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
	echo "test-deps: SoftHSM2 is missing and cannot be installed here: install the softhsm2 package" >&2
	exit 1
fi
echo "test-deps: installing softhsm2" >&2
apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq softhsm2 >/dev/null
