"""The set-up as a fresh machine meets it: the workflow templates install make and python3 before the
first command that needs them, ci/bootstrap.sh does that from a bare Debian (POSIX sh), and apt waits
for another apt's lock instead of failing at once."""
from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
CI = ROOT / "ci"
#: what a bare debian:12 has that the scripts use (coreutils, grep, dash)
BASE_TOOLS = ("sh", "dirname", "grep", "cat", "mktemp", "rm", "env", "id", "sleep")


def _jobs():
    for wf in sorted((CI / "workflows").glob("*.yml")):
        for name, job in yaml.safe_load(wf.read_text())["jobs"].items():
            yield f"{wf.name}:{name}", job


def _index(steps, pred):
    return next((i for i, st in enumerate(steps) if pred(st)), None)


@pytest.mark.parametrize("where,job", list(_jobs()), ids=[w for w, _ in _jobs()])
def test_debian_jobs_bootstrap_before_make(where, job):
    image = (job.get("container") or {}).get("image", "")
    steps = job["steps"]
    uses_make = _index(steps, lambda st: "make " in st.get("run", "") or ".venv/" in st.get("run", ""))
    if not image.startswith("debian") or uses_make is None:
        pytest.skip(f"{where}: not a bare-Debian job that runs make")
    checkout = _index(steps, lambda st: st.get("uses", "").startswith("actions/checkout"))
    boot = _index(steps, lambda st: st.get("run", "").strip() == "sh ci/bootstrap.sh")
    assert checkout is not None and boot is not None, where
    assert checkout < boot < uses_make, (where, checkout, boot, uses_make)
    # nothing before the bootstrap needs more than apt-get (the checkout's git is installed by apt)
    for st in steps[:boot]:
        run = st.get("run", "")
        assert not any(w in run for w in ("make", "python", "bash ")), (where, run)


def _sandbox(tmp_path: Path, apt_script: str) -> tuple[Path, dict[str, str]]:
    """A PATH holding only a bare system's tools and a stub apt-get that logs its arguments."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in BASE_TOOLS:
        real = shutil.which(tool)
        if real is None:
            pytest.skip(f"{tool} not found")
        (bin_dir / tool).symlink_to(real)
    (bin_dir / "sleep").unlink()
    (bin_dir / "sleep").write_text("#!/bin/sh\necho sleep \"$@\" >> \"$APT_LOG\"\n")
    (bin_dir / "apt-get").write_text("#!/bin/sh\necho apt-get \"$@\" >> \"$APT_LOG\"\n" + apt_script)
    for f in ("sleep", "apt-get"):
        (bin_dir / f).chmod(0o755)
    log = tmp_path / "apt.log"
    log.touch()
    return log, {"PATH": str(bin_dir), "APT_LOG": str(log), "TMPDIR": str(tmp_path)}


@pytest.mark.skipif(os.geteuid() != 0, reason="bootstrap without sudo needs root")
def test_bootstrap_installs_make_and_python_on_a_bare_system(tmp_path):
    log, env = _sandbox(tmp_path, "exit 0\n")
    r = subprocess.run(["/bin/dash", str(CI / "bootstrap.sh")], env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    calls = log.read_text().splitlines()
    assert calls[0].startswith("apt-get -o DPkg::Lock::Timeout=600 update")
    assert calls[1].startswith("apt-get -o DPkg::Lock::Timeout=600 install -y")
    assert calls[1].split()[-4:] == ["make", "bash", "python3", "python3-venv"]


def test_bootstrap_does_nothing_when_all_is_there():
    r = subprocess.run(["/bin/dash", str(CI / "bootstrap.sh")], capture_output=True, text=True,
                       timeout=60)
    if shutil.which("make") is None:
        pytest.skip("make not installed here")
    assert r.returncode == 0 and "present" in r.stdout, r.stdout + r.stderr


def test_apt_waits_while_another_holds_the_lock_then_gives_up(tmp_path):
    # the first two calls meet a held lock, the third gets it
    log, env = _sandbox(tmp_path, 'n=$(grep -c "^apt-get" "$APT_LOG")\n'
                                  'if [ "$n" -le 2 ]; then echo "E: Could not get lock '
                                  '/var/lib/apt/lists/lock. It is held by process 1 (apt-get)" >&2; '
                                  'exit 100; fi\nexit 0\n')
    r = subprocess.run(["/bin/dash", str(CI / "apt-get.sh"), "update", "-qq"], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert log.read_text().count("apt-get -o DPkg::Lock::Timeout=600 update -qq") == 3
    assert log.read_text().count("sleep 5") == 2 and "waiting" in r.stderr
    # a lock never released: give up after APT_LOCK_WAIT with apt's words and ours
    log.write_text("")
    env["APT_LOCK_WAIT"] = "10"
    (Path(env["PATH"]) / "apt-get").write_text(
        "#!/bin/sh\necho apt-get \"$@\" >> \"$APT_LOG\"\necho 'E: Could not get lock x' >&2\nexit 100\n")
    r = subprocess.run(["/bin/dash", str(CI / "apt-get.sh"), "update"], env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 100 and "Could not get lock" in r.stderr and "gave up after 10 s" in r.stderr
    # any other failure is not retried
    log.write_text("")
    (Path(env["PATH"]) / "apt-get").write_text(
        "#!/bin/sh\necho apt-get \"$@\" >> \"$APT_LOG\"\necho 'E: Unable to locate package nope' >&2\n"
        "exit 100\n")
    r = subprocess.run(["/bin/dash", str(CI / "apt-get.sh"), "install", "nope"], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 100 and "Unable to locate" in r.stderr
    assert log.read_text().count("apt-get") == 1


@pytest.mark.skipif(shutil.which("apt-get") is None or os.geteuid() != 0, reason="needs apt-get, root")
def test_real_apt_get_update_waits_for_the_lists_lock(tmp_path):
    # apt 2.6's `update` ignores DPkg::Lock::Timeout: without the retry it fails at once. A private
    # lists directory and an empty source list: no network, no effect on the machine's apt.
    lists, cache, parts = tmp_path / "lists", tmp_path / "cache", tmp_path / "parts"
    for d in (lists / "partial", cache / "archives" / "partial", parts):
        d.mkdir(parents=True)
    (tmp_path / "empty.list").write_text("")
    fd = os.open(lists / "lock", os.O_RDWR | os.O_CREAT, 0o640)
    fcntl.lockf(fd, fcntl.LOCK_EX)                       # apt's own (fcntl) lock
    threading.Timer(2.0, lambda: os.close(fd)).start()   # released while apt-get.sh waits
    opts = ["-o", f"Dir::State::Lists={lists}/", "-o", f"Dir::Cache={cache}/",
            "-o", f"Dir::Etc::SourceList={tmp_path / 'empty.list'}", "-o", f"Dir::Etc::SourceParts={parts}/"]
    t0 = time.monotonic()
    r = subprocess.run(["sh", str(CI / "apt-get.sh"), *opts, "update", "-qq"], capture_output=True,
                       text=True, timeout=60, env={**os.environ, "APT_LOCK_WAIT": "30"})
    assert r.returncode == 0, r.stderr
    assert "waiting" in r.stderr and time.monotonic() - t0 >= 2.0
