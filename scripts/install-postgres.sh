#!/usr/bin/env bash
# Install Debian's PostgreSQL server when it is missing (the tuner's real-database tests
# start their own throwaway server from it). Needs root and Debian's package lists.
set -euo pipefail
if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "install-postgres: not root or no apt-get; PostgreSQL tests will be skipped" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null || true
apt-get install -y -qq postgresql >/dev/null || echo "install-postgres: apt-get install failed" >&2
