#!/usr/bin/env bash
# Installs what fdpp needs to build and test on Debian 12 / Ubuntu: Debian packages only, plus
# the npm packages of the tokenizer comparison and server tests. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
packages=(build-essential cmake ninja-build pkg-config git
          nlohmann-json3-dev libcli11-dev libfmt-dev libspdlog-dev libgtest-dev libgmock-dev
          libbenchmark-dev libpcre2-dev libutf8proc-dev libcpp-httplib-dev)
command -v node >/dev/null 2>&1 || packages+=(nodejs)
command -v npm >/dev/null 2>&1 || packages+=(npm)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# The reference tokenizer for tests/tokenizer_npm (versions pinned by its package-lock.json).
if [ -f tests/tokenizer_npm/package-lock.json ]; then
  npm ci --prefix tests/tokenizer_npm --no-audit --no-fund --loglevel=error
fi
# The server tests' client (openai) and the chat-template reference (@huggingface/jinja).
if [ -f tests/server/package-lock.json ]; then
  npm ci --prefix tests/server --no-audit --no-fund --loglevel=error
fi
