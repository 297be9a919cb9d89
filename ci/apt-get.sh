#!/bin/sh
# apt-get that waits for another apt/dpkg (unattended-upgrades, a parallel job) instead of failing at
# once with "Could not get lock". DPkg::Lock::Timeout makes `install` wait for dpkg's frontend lock,
# but apt 2.6 (Debian 12) gives up at once on the lists lock (`update`) and the archives lock, so those
# are retried here until APT_LOCK_WAIT seconds (default 600) have passed. POSIX sh: ci/bootstrap.sh
# runs it before bash-only tools are known to exist.
#   usage: sh ci/apt-get.sh update | install -y PKG...   (as root)
set -u
wait_s=${APT_LOCK_WAIT:-600}
waited=0
err=$(mktemp "${TMPDIR:-/tmp}/duohil-apt.XXXXXX")
trap 'rm -f "$err"' EXIT
while :; do
    apt-get -o DPkg::Lock::Timeout="$wait_s" "$@" 2>"$err"
    rc=$?
    if [ "$rc" -eq 0 ] || ! grep -q -e 'Could not get lock' -e 'Unable to lock' "$err"; then
        cat "$err" >&2
        exit "$rc"
    fi
    if [ "$waited" -ge "$wait_s" ]; then
        cat "$err" >&2
        echo "[apt] gave up after ${waited} s waiting for another apt/dpkg to finish" >&2
        exit "$rc"
    fi
    [ "$waited" -eq 0 ] && echo "[apt] another apt/dpkg holds its lock; waiting (up to ${wait_s} s)" >&2
    sleep 5
    waited=$((waited + 5))
done
