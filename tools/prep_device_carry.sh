#!/usr/bin/env bash
# Here, before the first device call of a session: ../shared/device/prep-carry.sh stages the models,
# the test data and the cpp-httplib .debs in .carry/; the GPU machine also lacks libpcre2-dev,
# which device_build.sh unpacks from .carry/debs, so this adds those .debs (from apt's cache, where
# scripts/install-deps.sh left them, or downloaded).
set -euo pipefail
cd "$(dirname "$0")/.."
bash ../shared/device/prep-carry.sh
mkdir -p .carry/debs
if ! ls .carry/debs/libpcre2-dev_*.deb >/dev/null 2>&1; then
  if ls /var/cache/apt/archives/libpcre2-dev_*.deb >/dev/null 2>&1; then
    cp /var/cache/apt/archives/libpcre2-*.deb .carry/debs/
  else
    (cd .carry/debs && apt-get download libpcre2-dev libpcre2-8-0 libpcre2-16-0 libpcre2-32-0 libpcre2-posix3)
  fi
fi
ls .carry/debs
