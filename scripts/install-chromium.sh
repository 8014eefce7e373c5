#!/usr/bin/env bash
# Install Debian's Chromium when it is missing (the drawing page's browser test drives it
# with Playwright; Playwright cannot download a browser of its own here).
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "install-chromium: not root or no apt-get; browser tests will be skipped" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null || true
apt-get install -y -qq chromium >/dev/null || echo "install-chromium: apt-get install failed" >&2
