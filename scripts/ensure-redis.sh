#!/usr/bin/env bash
# A Redis server binary for the Celery broker of the scale-out tests and benchmark (README "Scaling out").
# Debian's redis-server package, installed once; the tests start their own server on a free loopback port
# (RUNLEVEL=1 keeps the package from starting a system-wide one).
set -euo pipefail
if command -v redis-server >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "error: redis-server is not installed; install Debian's redis-server package (apt-get install redis-server)" >&2
  exit 1
fi
echo "Installing redis-server (Debian package) for the Celery broker..." >&2
export DEBIAN_FRONTEND=noninteractive RUNLEVEL=1
if ! apt-get install -y -qq --no-install-recommends redis-server >/dev/null 2>&1; then
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends redis-server >/dev/null
fi
command -v redis-server >/dev/null
