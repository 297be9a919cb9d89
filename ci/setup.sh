#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian 12 machine (root, or sudo when not root):
#   1. Debian toolchains for both MCUs, Python headers for the native core, and mono (mcs, mono)
#      for the Renode C# (each installed only when missing),
#   2. a virtualenv in .venv with duohil and its test extras (reinstalled only when pyproject.toml,
#      setup.py or the native core's C sources changed; the C extension is built by that install),
#   3. duohil's modules byte-compiled (.pyc), also when PYTHONDONTWRITEBYTECODE is set.
# A second run does no network work and takes about a second.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[setup] %s\n' "$*"; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

need_pkgs=()
command -v arm-none-eabi-gcc >/dev/null 2>&1 || need_pkgs+=(gcc-arm-none-eabi)
# newlib: the M7 hard-float multilib's libc.a is what the STM32 link needs.
[ -e /usr/lib/arm-none-eabi/newlib/thumb/v7e-m+dp/hard/libc.a ] || need_pkgs+=(libnewlib-arm-none-eabi)
command -v riscv64-unknown-elf-gcc >/dev/null 2>&1 || need_pkgs+=(gcc-riscv64-unknown-elf)
command -v make >/dev/null 2>&1 || need_pkgs+=(make)
command -v gcc >/dev/null 2>&1 || need_pkgs+=(gcc)
# C# for the Renode models: tests/test_renode_cs.py compiles platforms/renode/*.cs and runs their cores.
command -v mcs >/dev/null 2>&1 || need_pkgs+=(mono-mcs)
command -v mono >/dev/null 2>&1 || need_pkgs+=(mono-runtime)
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then need_pkgs+=(python3-venv); fi
# Python.h: the native core (setup.py's C extension) is compiled against it at install time.
if ! "${PYTHON:-python3}" -c 'import os, sys, sysconfig
sys.exit(0 if os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")) else 1)' \
        >/dev/null 2>&1; then need_pkgs+=(python3-dev); fi
if [ ${#need_pkgs[@]} -gt 0 ]; then
    say "installing Debian packages: ${need_pkgs[*]}"
    # ci/apt-get.sh waits (up to 600 s) while another apt/dpkg holds the lock instead of failing
    as_root sh ci/apt-get.sh update -qq
    as_root env DEBIAN_FRONTEND=noninteractive sh ci/apt-get.sh install -y -qq --no-install-recommends \
        "${need_pkgs[@]}"
else
    say "toolchains present: $(arm-none-eabi-gcc -dumpversion) (arm), $(riscv64-unknown-elf-gcc -dumpversion) (riscv)"
fi

PY=${PYTHON:-python3}
if ! "$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
    echo "[setup] error: $PY is $("$PY" --version 2>&1); duohil needs Python >= 3.11" >&2
    exit 2
fi
if [ ! -x .venv/bin/python ]; then
    say "creating virtualenv .venv"
    "$PY" -m venv .venv
fi
stamp=.venv/.duohil-installed
# reinstalled (and the native core recompiled) when the package metadata or a C source changed
want=$(cat pyproject.toml setup.py duohil/engines/builtin/native/*.[ch] | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    say "installing duohil[test,report] into .venv"
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e '.[test,report]'
    # pip byte-compiles what it installs; this makes sure of it for the venv's packages (a no-op
    # when their .pyc are there), whatever PYTHONDONTWRITEBYTECODE says
    .venv/bin/python -m compileall -q -j 0 "$(.venv/bin/python -c 'import sysconfig
print(sysconfig.get_paths()["purelib"])')" >/dev/null || true
    echo "$want" > "$stamp"
else
    say "virtualenv up to date"
fi
# the builtin engine needs the native core (no Python copy of the scheduler and the exception
# paths is left): an install that could not compile it is a set-up failure, said in one line
if ! why=$(.venv/bin/python -c 'from duohil.engines.builtin import native; import sys
sys.exit(0) if native.core() is not None else sys.exit(native.why())' 2>&1); then
    rm -f "$stamp"                       # the next run compiles again
    echo "[setup] error: $why" >&2
    exit 2
fi
# duohil's own modules as .pyc, on every run (only changed sources are compiled again: ~0.1 s).
# With PYTHONDONTWRITEBYTECODE set (this host, many CI images) Python never writes them itself,
# so every process -- each `duohil run`, each campaign worker -- compiled duohil from source
# (~0.2-0.4 s of CPU). compileall writes them regardless; a .pyc whose source changed since is
# ignored (its header records the source's mtime and size) until the next `make`.
.venv/bin/python -m compileall -q duohil
