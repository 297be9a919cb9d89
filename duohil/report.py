"""HTML report for a matrix of A/B runs: the verdict table, then per run a timeline of both MCUs'
frames, the injected faults, the plant position and the decoded crash, as one self-contained file
(plots embedded as SVG by matplotlib)."""
from __future__ import annotations

import html
import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .runner import AbResult, RunResult


def _plot(run: "RunResult") -> str:
    try:
        import matplotlib
        matplotlib.use("Agg")
        from matplotlib import pyplot as plt
    except ImportError:
        return "<p><i>matplotlib not installed: no plot</i></p>"
    tl = run.timeline
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(9, 3.6), sharex=True,
                                   gridspec_kw={"height_ratios": [2, 1]})
    plant = tl.get("plant") or []
    if plant:
        ax1.plot([p[0] for p in plant], [p[1] for p in plant], lw=1, color="tab:blue")
        ax1.set_ylabel("position (counts)")
    for t, kind, d in tl.get("events", []):
        if kind == "end_stop":
            ax1.axvline(t, color="red", lw=1.5)
            ax1.annotate("end stop", (t, 0), color="red", fontsize=7)
        elif kind in ("cpu_fault", "lockup", "reset"):
            ax1.axvline(t, color="purple", lw=1, ls="--")
            ax1.annotate(str(d.get("exception", kind)), (t, 0), color="purple", fontsize=7)
    for y, (direction, colour) in enumerate((("peer->stm32", "tab:green"),
                                             ("stm32->peer", "tab:orange"))):
        ts = [f[0] for f in tl.get("frames", {}).get(direction, [])]
        ax2.vlines(ts, y + 0.1, y + 0.9, color=colour, lw=0.6)
    for f in tl.get("faults", []):
        if "t_ps" in f:
            t = f["t_ps"] / 1e9
            ax2.axvline(t, color="black", lw=1)
            ax2.annotate(f["kind"], (t, 1.9), fontsize=7)
    ax2.set_yticks([0.5, 1.5], ["peer->stm32", "stm32->peer"], fontsize=7)
    ax2.set_xlabel("virtual time (ms)")
    fig.tight_layout()
    buf = io.StringIO()
    fig.savefig(buf, format="svg")
    plt.close(fig)
    svg = buf.getvalue()
    return svg[svg.find("<svg"):]


def _run_section(run: "RunResult") -> str:
    e = html.escape
    crash = ""
    if run.crash:
        lines = [run.crash.get("pc") or ""] + run.crash.get("summary", []) + \
            [f"#{i} {b}" for i, b in enumerate(run.crash.get("backtrace", []))]
        crash = "<h4>crash</h4><pre>" + e("\n".join(lines)) + "</pre>"
    ev = "".join(f"<li><b>{e(k)}</b>: {e(v)}</li>" for k, v in run.evidence.items())
    plan = e(", ".join(f"{f.get('kind')}({', '.join(f'{k}={v}' for k, v in f.items() if k != 'kind')})"
                       for f in run.fault_plan)) or "none"
    console = "\n".join(run.console.get("stm32", [])[-15:])
    err = f"<p class=bad>engine error: {e(run.error)}</p>" if run.error else ""
    return (f"<section><h3>{e(run.scenario)} — {e(run.variant)} — "
            f"{'<span class=ok>' if run.matches else '<span class=bad>'}{e(', '.join(run.outcomes))}"
            f"</span></h3>{err}<p>faults: {plan}<br>fingerprint {e(run.fingerprint[:16])}… "
            f"virtual {run.virtual_ms:.0f} ms, wall {run.wall_s:.2f} s</p><ul>{ev}</ul>{crash}"
            f"{_plot(run)}<details><summary>STM32 console (last lines)</summary><pre>{e(console)}"
            f"</pre></details></section>")


def write_matrix(results: list["AbResult"], path: str | Path, rows: list[list[str]]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    e = html.escape
    table = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in rows)
    body = "".join(_run_section(r) for ab in results for r in ab.runs)
    path.write_text(
        "<!doctype html><meta charset=utf-8><title>duohil crash-mode matrix</title><style>"
        "body{font-family:sans-serif;max-width:1000px;margin:auto}td{padding:2px 8px}"
        ".ok{color:green}.bad{color:#b00}pre{background:#f4f4f4;font-size:12px}</style>"
        "<h1>duohil crash-mode A/B matrix</h1><table border=1 cellspacing=0>"
        "<tr><th>scenario</th><th>buggy</th><th>fixed</th><th>fixed-no-fix</th><th>verdict</th></tr>"
        f"{table}</table>{body}")
    return path


def write_campaign(doc: dict[str, Any], path: str | Path) -> Path:
    """HTML for a campaign result (the JSON of ``CampaignResult.to_json``): the crash-rate table
    with 95% confidence intervals, outcome counts, and every trial's realised fault plan."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    e = html.escape
    s = doc["summary"]
    rows = "".join(
        f"<tr><td>{e(v)}</td><td>{r['trials']}</td><td>{r['crashes']}</td>"
        f"<td>{100 * r['rate']:.1f}%</td><td>{100 * r['ci95'][0]:.1f}% – {100 * r['ci95'][1]:.1f}%</td>"
        f"<td>{e(', '.join(f'{k}: {n}' for k, n in r['outcomes'].items()))}</td></tr>"
        for v, r in s.items())
    trials = "".join(
        f"<tr><td>{t['trial']}</td><td>{t['seed']}</td>"
        f"<td>{e('; '.join(', '.join(f'{k}={v}' for k, v in f.items()) for f in t['buggy']['fault_plan']))}</td>"
        + "".join(f"<td class={'bad' if t[v]['crashed'] else 'ok'}>{e(', '.join(t[v]['outcomes']))}</td>"
                  for v in s) + "</tr>"
        for t in doc["trials"])
    path.write_text(
        "<!doctype html><meta charset=utf-8><title>duohil campaign</title><style>"
        "body{font-family:sans-serif;max-width:1000px;margin:auto}td{padding:2px 8px}"
        ".ok{color:green}.bad{color:#b00}</style>"
        f"<h1>Campaign: {e(doc['scenario'])}</h1><p>{doc['trials_total']} trials, base seed "
        f"{doc['base_seed']}, engine {e(doc['engine'])}. A trial crashes when it shows a label of "
        "the crash mode under study (the scenario's buggy expectation; for the nominal scenario, any "
        "label but ok)" + (f": {e(', '.join(doc['crash_labels']))}" if doc.get("crash_labels") else "")
        + ".</p>"
        "<table border=1 cellspacing=0><tr><th>variant</th><th>trials</th><th>crashes</th>"
        f"<th>rate</th><th>95% CI (Wilson)</th><th>outcomes</th></tr>{rows}</table>"
        "<h2>Trials</h2><table border=1 cellspacing=0><tr><th>trial</th><th>seed</th>"
        "<th>realised fault plan</th>" + "".join(f"<th>{e(v)}</th>" for v in s) + "</tr>"
        f"{trials}</table>")
    return path
