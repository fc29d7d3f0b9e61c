"""``asha-hpc plot``: learning curves coloured by the highest rung reached (rung lengths
marked), the best metric so far against compute spent, trials per rung over time. The HTML
report adds a fourth panel: whether consecutive rungs rank the promoted trials alike.

matplotlib is optional (``pip install 'asha-hpc[plot]'``); it is used through its object API
with the Agg canvas (no pyplot, no display, no global state). ``plot_data`` gathers what the
panels show and needs no matplotlib: the HTML report draws the same data as inline SVG when
matplotlib is missing (``svg_panels``).
"""
from __future__ import annotations

import html
import io
import math
from collections.abc import Sequence
from typing import Any

from ..errors import AshaError
from ..protocol.expdir import METRICS
from ..protocol.metrics import finite_float
from .observe import (
    best_vs_compute,
    curve_metric_names,
    curve_rows,
    pick_curve_metric,
    rung_counts_over_time,
)
from .status import AGREE_MIN_TRIALS, agreement_pairs, rank_correlation, rank_percentiles

INSTALL_HINT = "pip install 'asha-hpc[plot]'"
NONE_COLOR = "#9e9e9e"
# viridis-like, dark (low rungs) to bright (top rung): distinguishable on white
PALETTE = ["#440154", "#3b528b", "#21918c", "#5ec962", "#c9a800", "#e6550d", "#d62728"]


def require_matplotlib():
    """matplotlib's Figure class, or a clear error naming the extra to install."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise AshaError(f"plots need matplotlib, which is not installed: {INSTALL_HINT}") from None
    return Figure


def level_colors(levels: Sequence[int]) -> dict[int, str]:
    """Rung length -> colour, spread over the palette (the top rung gets the last colour)."""
    levels = sorted(levels)
    n = len(levels)
    out = {}
    for i, L in enumerate(levels):
        j = (len(PALETTE) - 1) if n == 1 else round(i * (len(PALETTE) - 1) / (n - 1))
        out[L] = PALETTE[j]
    return out


def _literal(text: str) -> str:
    """A user's metric name as matplotlib text: ``$`` would start math mode (and a name like
    ``cost $\\x{$`` would not even parse)."""
    return text.replace("$", r"\$")


def plot_data(exp, cfg, st, records, curve_metric: str | None = None) -> dict[str, Any]:
    """Everything the three panels show, as plain lists."""
    metric = cfg.searcher.metric
    rows = curve_rows(exp)
    if curve_metric is not None and rows and curve_metric not in (names := curve_metric_names(rows)):
        raise AshaError(f"--curve-metric {curve_metric}: no trial's curve has it; they have "
                        f"{', '.join(names[:12]) or 'no numbers'}")
    name = curve_metric or pick_curve_metric(rows, metric)
    curves: dict[int, tuple[list[float], list[float]]] = {}
    source = METRICS
    if name is not None:
        for r in rows:
            x, y = finite_float(r["step"]), finite_float(r["metrics"].get(name))
            if x is None or y is None:
                continue
            xs, ys = curves.setdefault(r["trial_id"], ([], []))
            xs.append(x)
            ys.append(y)
    if not curves:  # no learning curves on disk (e.g. the simulated backend): rung results
        name, source = metric, "rung results"
        for t in st.trials.values():
            pts = sorted((float(L), y) for L, v in t.rung_metrics.items()
                         if (y := finite_float(v)) is not None)
            if pts:
                curves[t.id] = ([L for L, _ in pts], [y for _, y in pts])
    lengths = sorted({r.length for r in st.searcher.rungs()})
    reached = {t.id: t.length for t in st.trials.values()}
    return {
        "metric": metric, "curve_metric": name, "curve_source": source,
        "unit": cfg.searcher.length_unit, "smaller_is_better": cfg.searcher.smaller_is_better,
        "rung_lengths": lengths, "reached": reached, "curves": curves,
        "best": best_vs_compute(cfg, records),
        "rung_counts": rung_counts_over_time(records),
        "agreement": agreement_points(st),
    }


def agreement_points(st) -> list[dict[str, Any]]:
    """Per pair of consecutive lengths with at least 3 trials at both: each trial's rank at
    the shorter and at the longer length (as shares, 0 = smallest metric), and the rank
    correlation once AGREE_MIN_TRIALS trials have both."""
    out = []
    for short, long, pairs in agreement_pairs(st):
        if len(pairs) < 3:
            continue
        a, b = zip(*pairs)
        out.append({"from": short, "to": long, "trials": len(pairs),
                    "xs": rank_percentiles(list(a)), "ys": rank_percentiles(list(b)),
                    "rank_corr": rank_correlation(a, b) if len(pairs) >= AGREE_MIN_TRIALS else None})
    return out


def agreement_label(p: dict[str, Any]) -> str:
    corr = "" if p["rank_corr"] is None else f", rank corr {p['rank_corr']:.2f}"
    return f"{p['from']} vs {p['to']} ({p['trials']} trials{corr})"


AGREEMENT_TITLE = "do consecutive rungs rank trials alike?"
AGREEMENT_AXES = ("rank at the shorter length (0: smallest metric)", "rank at the longer length")


def time_scale(max_hours: float) -> tuple[float, str]:
    """(factor from hours, unit name) for an axis whose largest value is ``max_hours``."""
    if max_hours >= 2.0:
        return 1.0, "hours"
    if max_hours * 60 >= 2.0:
        return 60.0, "minutes"
    return 3600.0, "seconds"


def _log_scale(values: list[float]) -> bool:
    pos = [v for v in values if v is not None]
    return bool(pos) and min(pos) > 0 and max(pos) / min(pos) > 30


# ----------------------------------------------------------------------------- matplotlib
def draw_curves(ax, d: dict[str, Any]) -> None:
    colors = level_colors(d["rung_lengths"])
    handles: dict[int, Any] = {}
    order = sorted(d["curves"], key=lambda tid: (d["reached"].get(tid, 0), tid))
    for tid in order:  # the trials that went furthest last, on top
        xs, ys = d["curves"][tid]
        L = d["reached"].get(tid, 0)
        (line,) = ax.plot(xs, ys, color=colors.get(L, NONE_COLOR), lw=1.0, alpha=0.8,
                          marker="." if len(xs) < 6 else None)
        handles.setdefault(L, line)
    for L in d["rung_lengths"]:
        ax.axvline(L, color="#bbbbbb", ls="--", lw=0.8, zorder=0)
    allx = [x for xs, _ in d["curves"].values() for x in xs]
    rl = d["rung_lengths"]
    if allx and min(allx) > 0 and rl and rl[0] > 0 and rl[-1] / rl[0] >= 8:
        ax.set_xscale("log")  # rung lengths grow geometrically: give each rung the same room
        from matplotlib.ticker import NullFormatter, ScalarFormatter

        ax.set_xticks(rl)
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
    if _log_scale([y for _, ys in d["curves"].values() for y in ys]):
        ax.set_yscale("log")
    ax.set_xlabel(f"step ({d['unit']}); dashed: rung lengths")
    ax.set_ylabel(_literal(d["curve_metric"] or d["metric"]))
    ax.set_title(f"learning curves ({len(d['curves'])} trials, {d['curve_source']})", fontsize=10)
    if handles:
        levels = sorted(handles)
        ax.legend([handles[L] for L in levels],
                  [f"reached {L}" if L else "no rung yet" for L in levels], fontsize=7, loc="best",
                  title="highest rung", title_fontsize=7)
    if not d["curves"]:
        ax.text(0.5, 0.5, "no results yet", transform=ax.transAxes, ha="center")


def draw_best(ax, d: dict[str, Any]) -> None:
    pts = d["best"]
    f, unit = time_scale(max((p[0] for p in pts), default=0.0))
    if pts:
        xs = [p[0] * f for p in pts]
        ys = [p[1] for p in pts]
        ax.step(xs, ys, where="post", color="#1f77b4", lw=1.5)
        ax.plot(xs[-1:], ys[-1:], "o", color="#d62728")
    else:
        ax.text(0.5, 0.5, "no results yet", transform=ax.transAxes, ha="center")
    ax.set_xlabel(f"compute spent (job-{unit})")
    ax.set_ylabel(_literal(f"best {d['metric']} so far"))
    ax.set_title("best metric vs compute", fontsize=10)


def draw_rung_counts(ax, d: dict[str, Any]) -> None:
    from matplotlib.ticker import MaxNLocator

    colors = level_colors(d["rung_lengths"] or list(d["rung_counts"]))
    f, unit = time_scale(max((p[0] for s in d["rung_counts"].values() for p in s), default=0.0))
    for L, series in d["rung_counts"].items():
        xs = [0.0] + [p[0] * f for p in series]
        ys = [0] + [p[1] for p in series]
        ax.step(xs, ys, where="post", color=colors.get(L, NONE_COLOR), lw=1.5, label=f"length {L}")
    if d["rung_counts"]:
        ax.legend(fontsize=7, loc="best")
    else:
        ax.text(0.5, 0.5, "no results yet", transform=ax.transAxes, ha="center")
    ax.set_xlabel(f"{unit} since the start")
    ax.set_ylabel("trials that completed the rung")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title("trials per rung over time", fontsize=10)


def draw_agreement(ax, d: dict[str, Any]) -> None:
    colors = level_colors([p["from"] for p in d["agreement"]])
    ax.plot([0, 1], [0, 1], color="#bbbbbb", ls="--", lw=0.8, zorder=0)
    for p in d["agreement"]:
        ax.scatter(p["xs"], p["ys"], s=14, color=colors.get(p["from"], NONE_COLOR), alpha=0.8,
                   label=_literal(agreement_label(p)))
    if d["agreement"]:
        ax.legend(fontsize=7, loc="best")
    else:
        ax.text(0.5, 0.5, "no trial has results at two lengths yet", transform=ax.transAxes,
                ha="center")
    ax.set_xlabel(AGREEMENT_AXES[0])
    ax.set_ylabel(AGREEMENT_AXES[1])
    ax.set_title(AGREEMENT_TITLE, fontsize=10)


PANELS = (("curves", draw_curves), ("best", draw_best), ("rungs", draw_rung_counts))
REPORT_PANELS = PANELS + (("agreement", draw_agreement),)


def _png(fig) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=fig.dpi)
    return buf.getvalue()


def render_png(d: dict[str, Any], width_px: int = 1500, height_px: int = 450) -> bytes:
    """The three panels side by side, as one PNG of exactly ``width_px`` x ``height_px``."""
    Figure = require_matplotlib()
    dpi = 100
    fig = Figure(figsize=(width_px / dpi, height_px / dpi), dpi=dpi, layout="constrained")
    axes = fig.subplots(1, 3)
    for ax, (_, draw) in zip(axes, PANELS):
        draw(ax, d)
    return _png(fig)


def panel_pngs(d: dict[str, Any], width_px: int = 560, height_px: int = 380) -> dict[str, bytes]:
    """Each panel as its own PNG (for the HTML report, which has one more)."""
    Figure = require_matplotlib()
    out = {}
    for name, draw in REPORT_PANELS:
        if name == "agreement" and not d["agreement"]:
            continue  # one rung, or no promotion yet
        fig = Figure(figsize=(width_px / 100, height_px / 100), dpi=100, layout="constrained")
        draw(fig.subplots(), d)
        out[name] = _png(fig)
    return out


# ----------------------------------------------------------------------------- SVG fallback
def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    out = []
    v = first
    while v <= hi + 1e-9 * step:
        out.append(round(v, 12))
        v += step
    return out


def svg_chart(title: str, xlabel: str, ylabel: str, series: list[dict[str, Any]],
              vlines: Sequence[float] = (), width: int = 560, height: int = 380) -> str:
    """A small line chart as inline SVG: ``series`` of {xs, ys, color, label, step, dots}
    (``dots``: points, no line)."""
    L, R, T, B = 64, 16, 28, 48
    xs = [x for s in series for x in s["xs"]] + list(vlines)
    ys = [y for s in series for y in s["ys"]]
    x0, x1 = (min(xs), max(xs)) if xs else (0.0, 1.0)
    y0, y1 = (min(ys), max(ys)) if ys else (0.0, 1.0)
    if x1 == x0:
        x1 = x0 + 1.0
    if y1 == y0:
        y0, y1 = y0 - 0.5, y1 + 0.5
    pad = (y1 - y0) * 0.05
    y0, y1 = y0 - pad, y1 + pad
    pw, ph = width - L - R, height - T - B

    def px(x: float) -> float:
        return L + (x - x0) / (x1 - x0) * pw

    def py(y: float) -> float:
        return T + (1 - (y - y0) / (y1 - y0)) * ph

    e = html.escape
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
             f'<rect width="{width}" height="{height}" fill="white"/>',
             f'<text x="{width / 2}" y="16" text-anchor="middle" font-size="13">{e(title)}</text>',
             f'<rect x="{L}" y="{T}" width="{pw}" height="{ph}" fill="none" stroke="#444"/>']
    for v in _ticks(x0, x1):
        parts.append(f'<text x="{px(v):.1f}" y="{T + ph + 14}" text-anchor="middle">{v:g}</text>')
    for v in _ticks(y0, y1):
        parts.append(f'<line x1="{L}" x2="{L + pw}" y1="{py(v):.1f}" y2="{py(v):.1f}" stroke="#eee"/>'
                     f'<text x="{L - 4}" y="{py(v) + 4:.1f}" text-anchor="end">{v:.4g}</text>')
    for v in vlines:
        parts.append(f'<line x1="{px(v):.1f}" x2="{px(v):.1f}" y1="{T}" y2="{T + ph}" '
                     f'stroke="#bbb" stroke-dasharray="4 3"/>')
    legend: dict[str, str] = {}
    for s in series:
        pts: list[tuple[float, float]] = list(zip(s["xs"], s["ys"]))
        if s.get("step"):
            stepped: list[tuple[float, float]] = []
            for i, (x, y) in enumerate(pts):
                if i:
                    stepped.append((x, pts[i - 1][1]))
                stepped.append((x, y))
            pts = stepped
        if not pts:
            continue
        if s.get("dots"):
            parts += [f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="2.5" fill="{s["color"]}" '
                      f'fill-opacity="0.8"/>' for x, y in pts]
        else:
            coords = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)
            parts.append(f'<polyline points="{coords}" fill="none" stroke="{s["color"]}" '
                         f'stroke-width="1.3" stroke-opacity="0.85" stroke-dasharray='
                         f'"{s.get("dash", "none")}"/>')
        if s.get("label") and s["label"] not in legend:
            legend[s["label"]] = s["color"]
    lx = max(L + 4, L + pw - 28 - 6 * max((len(lab) for lab in legend), default=0))
    lx = min(lx, L + pw - 110)  # about 6 px a character at font-size 11
    for i, (lab, col) in enumerate(legend.items()):
        y = T + 12 + 14 * i
        parts.append(f'<line x1="{lx}" x2="{lx + 18}" y1="{y - 4}" y2="{y - 4}" '
                     f'stroke="{col}" stroke-width="2"/><text x="{lx + 22}" y="{y}">{e(lab)}</text>')
    parts.append(f'<text x="{L + pw / 2}" y="{height - 10}" text-anchor="middle">{e(xlabel)}</text>')
    parts.append(f'<text transform="translate(14,{T + ph / 2}) rotate(-90)" '
                 f'text-anchor="middle">{e(ylabel)}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def svg_panels(d: dict[str, Any]) -> dict[str, str]:
    """The report's panels as inline SVG (no matplotlib needed)."""
    colors = level_colors(d["rung_lengths"])
    curves = []
    for tid in sorted(d["curves"], key=lambda t: (d["reached"].get(t, 0), t)):
        xs, ys = d["curves"][tid]
        L = d["reached"].get(tid, 0)
        curves.append({"xs": xs, "ys": ys, "color": colors.get(L, NONE_COLOR),
                       "label": f"reached {L}" if L else "no rung yet"})
    best = d["best"]
    fb, ub = time_scale(max((p[0] for p in best), default=0.0))
    fr, ur = time_scale(max((p[0] for s in d["rung_counts"].values() for p in s), default=0.0))
    rc_colors = level_colors(d["rung_lengths"] or list(d["rung_counts"]))
    ag_colors = level_colors([p["from"] for p in d["agreement"]])
    rungs = [{"xs": [0.0] + [p[0] * fr for p in s], "ys": [0] + [p[1] for p in s], "step": True,
              "color": rc_colors.get(L, NONE_COLOR), "label": f"length {L}"}
             for L, s in d["rung_counts"].items()]
    out = {
        "curves": svg_chart(f"learning curves ({len(curves)} trials, {d['curve_source']})",
                            f"step ({d['unit']}); dashed: rung lengths",
                            d["curve_metric"] or d["metric"], curves, vlines=d["rung_lengths"]),
        "best": svg_chart("best metric vs compute", f"compute spent (job-{ub})",
                          f"best {d['metric']} so far",
                          [{"xs": [p[0] * fb for p in best], "ys": [p[1] for p in best],
                            "color": "#1f77b4", "step": True}]),
        "rungs": svg_chart("trials per rung over time", f"{ur} since the start",
                           "trials that completed the rung", rungs),
    }
    if d["agreement"]:  # not for one rung, or before any promotion
        out["agreement"] = svg_chart(AGREEMENT_TITLE, *AGREEMENT_AXES, [
            {"xs": [0.0, 1.0], "ys": [0.0, 1.0], "color": "#bbbbbb", "dash": "4 3"}] + [
            {"xs": p["xs"], "ys": p["ys"], "dots": True, "label": agreement_label(p),
             "color": ag_colors.get(p["from"], NONE_COLOR)} for p in d["agreement"]])
    return out
