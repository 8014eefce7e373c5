#!/usr/bin/env bash
# install-debian.sh PACKAGE GLOB: install Debian's PACKAGE unless a file matching GLOB
# exists. Used for the real services and data the tests need: postgresql (the tuner's
# shared study), chromium (the drawing page's browser test; Playwright cannot download a
# browser of its own here) and dataset-fashion-mnist (real data that is not digits). Needs root and Debian's package lists; otherwise it says
# so and the tests that need the package skip with a message.
set -euo pipefail
package=$1
glob=$2
if compgen -G "$glob" >/dev/null; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "install-debian: not root or no apt-get; tests needing $package will be skipped" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null || true
apt-get install -y -qq "$package" >/dev/null || echo "install-debian: apt-get install $package failed" >&2
