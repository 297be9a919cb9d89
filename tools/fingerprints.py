"""Print the fingerprint and outcome of every scenario run (all A/B variants, default seeds).

The table the builtin engine's changes are checked against: a port or refactor must leave every line
as it was; a deliberate model change says in its commit which lines moved and why.

    .venv/bin/python tools/fingerprints.py [scenarios_dir] [-j N] > fingerprints.txt
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from duohil import runner, scenario  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir", nargs="?", default=str(ROOT / "scenarios"))
    ap.add_argument("-j", "--jobs", type=int, default=None)
    args = ap.parse_args(argv)
    scs = [scenario.load(p) for p in sorted(Path(args.dir).glob("*.yaml"))]
    for sc, res in zip(scs, runner.ab_many(scs, jobs=args.jobs)):
        if isinstance(res, Exception):
            print(f"{sc.name:20} error: {res}")
            continue
        for r in res.runs:
            print(f"{sc.name:20} {r.variant:24} {r.fingerprint}  {','.join(r.outcomes) or '-'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
