"""HTML report for a matrix of A/B runs: the verdict table, then per run a timeline of both MCUs'
frames, the injected faults, the plant position and the decoded crash, as one self-contained file
(plots embedded as SVG by matplotlib)."""
from __future__ import annotations

import html
import io
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .oracle import EXCEPTION_NAMES

if TYPE_CHECKING:  # pragma: no cover
    from .runner import AbResult, RunResult


#: at most this many points per plotted series: a plot is ~900 px wide, more points only add bytes
MAX_POINTS = 400
#: the report's colours for a label, by what it means for the run's variant
LABEL_CLASSES = {
    "expected": "the variant's expectation names it (a reproduction on buggy, ok on fixed)",
    "other": "seen, but not part of the expectation: it does not decide the verdict (the buggy "
             "build carries every field bug, so it shows other crash modes' labels too)",
    "wrong": "breaks the variant's expectation (a crash on a build that should hold, ok where "
             "the bug should show, or a label the scenario forbids)",
}
_STYLE = ("body{font-family:sans-serif;max-width:1000px;margin:auto}td{padding:2px 8px}"
          ".ok,.expected{color:#070}.bad,.wrong{color:#b00;font-weight:bold}.other{color:#777}"
          "pre{background:#f4f4f4;font-size:12px}")


def _expectation(expected: Any) -> tuple[list[str], list[str]]:
    """(any, none) label lists of an expectation in either form."""
    if expected is None:
        return [], []
    if isinstance(expected, dict):
        want, none = expected.get("any", []), expected.get("none", [])
    else:
        want, none = expected, []
    as_list = (lambda v: [v] if isinstance(v, str) else list(v))
    return as_list(want), as_list(none)


def label_class(label: str, expected: Any) -> str:
    """expected / other / wrong: how ``label`` bears on a run whose variant expects ``expected``."""
    want, none = _expectation(expected)
    if label in none:
        return "wrong"
    if label in want:
        return "expected"
    if want == ["ok"] or label == "ok":        # a crash where none belongs, or no crash at all
        return "wrong" if want else "other"
    return "other"


def _labels_html(labels: list[str], expected: Any) -> str:
    e = html.escape
    return ", ".join(f"<span class={label_class(lab, expected)}>{e(lab)}</span>" for lab in labels)


def _expect_text(expected: Any) -> str:
    want, none = _expectation(expected)
    if not want and not none:
        return "no expectation"
    text = ("ok" if want == ["ok"] else "any of " + ", ".join(want)) if want else "anything"
    return text + (f", none of {', '.join(none)}" if none else "")


def _value(key: str, v: Any) -> str:
    """A fault parameter as a reader wants it: addresses in hex, picoseconds as ms."""
    if isinstance(v, int) and not isinstance(v, bool) and ("addr" in key or key in ("pc", "value")):
        return f"{v:#x}"
    return str(v)


def _plan_text(plan: list[dict[str, Any]]) -> str:
    parts = []
    for f in plan:
        args = ", ".join(f"{k}={_value(k, v)}" for k, v in f.items() if k not in ("kind", "t_ps"))
        at = f" @ {f['t_ps'] / 1e9:.3f} ms" if isinstance(f.get("t_ps"), int) else ""
        parts.append(f"{f.get('kind')}({args}){at}")
    return ", ".join(parts) or "none"


def downsample(points: list[tuple[float, float]], n: int = MAX_POINTS) -> list[tuple[float, float]]:
    """At most ~``n`` points that keep the series' shape: per bucket its first point and its
    extremes (a spike into the end stop must survive), always the last point."""
    if len(points) <= n:
        return list(points)
    size = -(-len(points) // (n // 3))
    out: list[tuple[float, float]] = []
    for i in range(0, len(points), size):
        bucket = points[i:i + size]
        keep = {0, min(range(len(bucket)), key=lambda j: bucket[j][1]),
                max(range(len(bucket)), key=lambda j: bucket[j][1])}
        out += [bucket[j] for j in sorted(keep)]
    if out[-1] != points[-1]:
        out.append(points[-1])
    return out


def _ticks(ts: list[float], span: float, n: int = 2 * MAX_POINTS) -> list[float]:
    """Frame times rounded to 1/n of the plot's span, each once: the ticks a reader can tell apart."""
    q = span / n if span > 0 else 1.0
    return sorted({round(round(t / q) * q, 3) for t in ts})


def _plot(run: "RunResult") -> str:
    try:
        import matplotlib
        matplotlib.use("Agg")
        from matplotlib import pyplot as plt
    except ImportError:
        return "<p><i>matplotlib not installed: no plot</i></p>"
    # identical runs must give identical bytes: a fixed id salt, no date, text as text (smaller)
    with matplotlib.rc_context({"svg.hashsalt": "duohil", "svg.fonttype": "none"}):
        fig = _figure(run, plt)
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
        plt.close(fig)
    svg = buf.getvalue()
    return _compact(svg[svg.find("<svg"):])


def _compact(svg: str) -> str:
    """The SVG without what a browser does not need: the metadata block, indentation, and digits
    beyond 0.1 pt (matplotlib writes 6 decimals; a tenth of a point is below a screen pixel)."""
    svg = re.sub(r"<metadata>.*?</metadata>", "", svg, flags=re.S)
    svg = re.sub(r"(\d\.\d)\d+", r"\1", svg)
    return re.sub(r"\s*\n\s*", " ", svg)


def _figure(run: "RunResult", plt: Any) -> Any:
    tl = run.timeline
    span = float(run.virtual_ms or 0)
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(9, 3.6), sharex=True,
                                   gridspec_kw={"height_ratios": [2, 1]})
    plant = [tuple(p) for p in tl.get("plant") or []]
    moved = len({p[1] for p in plant}) > 1
    if moved:
        pts = downsample(plant)
        ax1.plot([p[0] for p in pts], [p[1] for p in pts], lw=1, color="tab:blue")
        ax1.set_ylabel("position (counts)", fontsize=8)
        lims = tl.get("soft_limits")
        if lims:
            top = max(p[1] for p in plant)
            bottom = min(p[1] for p in plant)
            for lim, name in zip(lims, ("soft limit min", "soft limit max")):
                # a limit far off the plotted range would squash the trace: draw the near ones
                if bottom - (top - bottom) <= lim <= top + (top - bottom):
                    ax1.axhline(lim, color="darkorange", lw=1, ls=":")
                    ax1.annotate(f"{name} {lim}", (0, lim), color="darkorange", fontsize=7,
                                 va="bottom")
        for t, text in tl.get("estops", []):
            y = min(plant, key=lambda p: abs(p[0] - t))[1]
            ax1.plot([t], [y], marker="X", color="red", ms=8, ls="none")
            ax1.annotate(text.split(" pos=")[0], (t, y), color="red", fontsize=7,
                         xytext=(4, -10), textcoords="offset points")
    else:
        _setpoint_panel(ax1, tl, plant)
    for t, kind, d in tl.get("events", []):
        if kind == "end_stop":
            ax1.axvline(t, color="red", lw=1.5)
            ax1.annotate("end stop", (t, 0), color="red", fontsize=7, xycoords=("data", "axes fraction"))
        elif kind in ("cpu_fault", "lockup", "reset"):
            ax1.axvline(t, color="purple", lw=1, ls="--")
            exc = d.get("exception", kind)
            name = EXCEPTION_NAMES.get(exc, f"exception {exc}") if isinstance(exc, int) else str(exc)
            ax1.annotate(f"{d.get('machine', 'stm32')} {name}", (t, 0.02), color="purple", fontsize=7,
                         xycoords=("data", "axes fraction"))
    for y, (direction, colour) in enumerate((("peer->stm32", "tab:green"),
                                             ("stm32->peer", "tab:orange"))):
        ts = _ticks([f[0] for f in tl.get("frames", {}).get(direction, [])], span)
        xs: list[float] = []
        ys: list[float] = []
        for t in ts:                       # one path per direction, not one element per frame
            xs += [t, t, float("nan")]
            ys += [y + 0.1, y + 0.9, float("nan")]
        ax2.plot(xs, ys, color=colour, lw=0.6)
    for f in tl.get("faults", []):
        if "t_ps" in f:
            t = f["t_ps"] / 1e9
            ax2.axvline(t, color="black", lw=1)
            ax2.annotate(f["kind"], (t, 1.9), fontsize=7)
    ax2.set_yticks([0.5, 1.5], ["peer->stm32", "stm32->peer"], fontsize=7)
    ax2.set_ylim(0, 2)
    ax2.set_xlabel("virtual time (ms)")
    fig.tight_layout()
    return fig


def _setpoint_panel(ax: Any, tl: dict[str, Any], plant: list[tuple[float, float]]) -> None:
    """The axis never moved: show instead what the STM32 made of each setpoint, next to what the
    peer meant (CM6: a decoded velocity off by 2^16, an enable flag read from padding)."""
    still = f"the axis never moved (position {plant[0][1]:g})" if plant else "no plant position"
    sps = tl.get("setpoints") or []
    if not sps:
        ax.text(0.5, 0.5, f"{still}; the STM32 applied no setpoint", ha="center", va="center",
                transform=ax.transAxes, fontsize=9)
        ax.set_yticks([])
        return
    t = [s[0] for s in sps]
    ax.step(t, [s[4] if s[4] is not None else float("nan") for s in sps], where="post",
            color="tab:green", lw=1.2, label="velocity the peer meant")
    ax.step(t, [s[2] for s in sps], where="post", color="tab:blue", lw=1, ls="--",
            label="velocity the STM32 applied")
    bad = [s for s in sps if (s[2], s[3]) != (s[4], s[5])]
    if bad:
        ax.plot([s[0] for s in bad], [s[2] for s in bad], "x", color="red", ms=4,
                label=f"{len(bad)} of {len(sps)} decoded wrong (velocity or flags)")
    ax.set_yscale("symlog", linthresh=1000)
    ax.set_ylabel("setpoint velocity", fontsize=8)
    ax.set_title(still + ": setpoints shown", fontsize=8)
    ax.legend(fontsize=7, loc="best")


def _run_section(run: "RunResult") -> str:
    e = html.escape
    crash = ""
    if run.crash:
        lines = [run.crash.get("pc") or ""] + run.crash.get("summary", []) + \
            [f"#{i} {b}" for i, b in enumerate(run.crash.get("backtrace", []))]
        crash = "<h4>crash</h4><pre>" + e("\n".join(lines)) + "</pre>"
    ev = "".join(f"<li><b>{e(k)}</b>: {e(v)}</li>" for k, v in run.evidence.items())
    console = "\n".join(run.console.get("stm32", [])[-15:])
    err = f"<p class=bad>engine error: {e(run.error)}</p>" if run.error else ""
    verdict = ("" if run.matches is None else "<span class=ok>as expected</span>" if run.matches
               else "<span class=bad>NOT as expected</span>")
    return (f"<section><h3>{e(run.scenario)} — {e(run.variant)} — "
            f"{_labels_html(run.outcomes, run.expected)}</h3>{err}"
            f"<p>expected: {e(_expect_text(run.expected))}: {verdict}<br>"
            f"faults: {e(_plan_text(run.fault_plan))}<br>fingerprint {e(run.fingerprint[:16])}… "
            f"virtual {run.virtual_ms:.0f} ms</p><ul>{ev}</ul>{crash}"
            f"{_plot(run)}<details><summary>STM32 console (last lines)</summary><pre>{e(console)}"
            f"</pre></details></section>")


def _legend() -> str:
    items = "".join(f"<li><span class={c}>{c}</span>: {html.escape(t)}</li>"
                    for c, t in LABEL_CLASSES.items())
    return f"<p>Label colours, per variant:</p><ul>{items}</ul>"


def write_matrix(results: list["AbResult"], path: str | Path, rows: list[list[str]]) -> Path:
    """The matrix page. Nothing in it depends on the host (no wall times): identical runs give an
    identical file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    e = html.escape
    runs = {ab.scenario: ab.runs for ab in results}

    def cell(row: list[str], col: int) -> str:
        if col == 4:
            return f"<td class={'ok' if row[4] == 'PASS' else 'bad'}>{e(row[4])}</td>"
        pick = ((lambda v: v == "buggy"), (lambda v: v == "fixed"),
                (lambda v: v.startswith("fixed-no-")))[col - 1] if 1 <= col <= 3 else None
        # a single run's page (the pytest plugin) names the row after the run, not the scenario
        mine = runs.get(row[0]) or (results[0].runs if len(results) == 1 else [])
        run = next((r for r in mine if pick and pick(r.variant)), None)
        if run is None or ", ".join(run.outcomes) != row[col]:
            return f"<td>{e(row[col])}</td>"
        return f"<td>{_labels_html(run.outcomes, run.expected)}</td>"

    table = "".join("<tr>" + "".join(cell(r, i) for i in range(len(r))) + "</tr>" for r in rows)
    body = "".join(_run_section(r) for ab in results for r in ab.runs)
    path.write_text(
        f"<!doctype html><meta charset=utf-8><title>duohil crash-mode matrix</title><style>{_STYLE}"
        "</style><h1>duohil crash-mode A/B matrix</h1><table border=1 cellspacing=0>"
        "<tr><th>scenario</th><th>buggy</th><th>fixed</th><th>fixed-no-fix</th><th>verdict</th></tr>"
        f"{table}</table>{_legend()}{body}")
    return path


def _campaign_plan(plan: list[dict[str, Any]]) -> str:
    return "; ".join(", ".join(f"{k}={_value(k, v)}" for k, v in f.items()) for f in plan)


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
        f"<td>{e(_campaign_plan(t['buggy']['fault_plan']))}</td>"
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
