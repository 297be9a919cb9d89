#!/bin/sh
# What `make test` / `make demo` need before make itself can start ci/setup.sh: make, bash, python3
# and its venv module. A minimal Debian (the debian:12 container) has none of make, python3 or venv.
# Run once as root (or with sudo available):  sh ci/bootstrap.sh && make test
# POSIX sh on purpose: it runs where nothing else may be installed yet. Idempotent: with everything
# present it installs nothing and touches no network.
set -eu
cd "$(dirname "$0")/.."
need=""
command -v make >/dev/null 2>&1 || need="$need make"
command -v bash >/dev/null 2>&1 || need="$need bash"
if command -v python3 >/dev/null 2>&1; then
    python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need="$need python3-venv"
else
    need="$need python3 python3-venv"
fi
if [ -z "$need" ]; then
    echo "[bootstrap] make, bash, python3 and venv present"
    exit 0
fi
if [ "$(id -u)" -eq 0 ]; then root=""; else root="sudo"; fi
echo "[bootstrap] installing Debian packages:$need"
# shellcheck disable=SC2086  # $need is a list of package names
$root sh ci/apt-get.sh update -qq
$root env DEBIAN_FRONTEND=noninteractive sh ci/apt-get.sh install -y -qq --no-install-recommends $need
