"""``asha-hpc report``: one self-contained HTML file to copy off the cluster and open anywhere.

No server, no external script, stylesheet or font: the plots are embedded (base64 PNG with
matplotlib, else inline SVG drawn here), and the trial tables sort on a header click with a
few lines of inline JavaScript. The page works without JavaScript too (tables unsorted).
"""
from __future__ import annotations

import base64
import html
import json
import math
import time
from typing import Any

from .observe import fmt_duration
from .text import RUNG_COLS, _summary_lines, agreement_lines, hp_text, metric_text

E = html.escape

CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:24px;color:#222;
     max-width:1400px}
h1{font-size:22px;margin-bottom:4px} h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd}
pre{background:#f6f6f6;padding:10px;overflow-x:auto;font-size:12px}
.plots{display:flex;flex-wrap:wrap;gap:12px} .plots figure{margin:0}
.plots img,.plots svg{border:1px solid #ddd;max-width:100%;height:auto}
table{border-collapse:collapse;font-size:12px;margin:8px 0}
th,td{border:1px solid #ddd;padding:3px 6px;text-align:right;white-space:nowrap}
td.t{text-align:left} th{background:#f0f0f0;position:sticky;top:0}
table.sortable th{cursor:pointer} table.sortable th:hover{background:#e2e2e2}
th[data-dir=asc]::after{content:" \\25B2"} th[data-dir=desc]::after{content:" \\25BC"}
.muted{color:#777;font-size:12px} tr:nth-child(even) td{background:#fafafa}
"""

JS = """
(function () {
  function key(td) {
    var s = td.getAttribute('data-v');
    if (s === null) s = td.textContent;
    var n = Number(s);
    return (s.trim() !== '' && isFinite(n)) ? n : s.toLowerCase();
  }
  function sortBy(table, col, asc) {
    var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var ea = a.cells[col].textContent === '', eb = b.cells[col].textContent === '';
      if (ea !== eb) return ea ? 1 : -1;            /* empty cells last, both ways */
      var x = key(a.cells[col]), y = key(b.cells[col]);
      if (typeof x !== typeof y) return typeof x === 'number' ? -1 : 1;
      return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1);
    });
    rows.forEach(function (r) { body.appendChild(r); });
    var ths = table.tHead.rows[0].cells;
    for (var i = 0; i < ths.length; i++) ths[i].removeAttribute('data-dir');
    ths[col].setAttribute('data-dir', asc ? 'asc' : 'desc');
    table.setAttribute('data-sorted-by', ths[col].textContent);
  }
  var tables = document.querySelectorAll('table.sortable');
  Array.prototype.forEach.call(tables, function (t) {
    var ths = t.tHead.rows[0].cells;
    Array.prototype.forEach.call(ths, function (th, i) {
      th.addEventListener('click', function () {
        sortBy(t, i, th.getAttribute('data-dir') !== 'asc');
      });
    });
    var d = t.getAttribute('data-sort');
    if (d !== null) sortBy(t, Number(d), true);
  });
  document.body.setAttribute('data-js', 'ready');
})();
"""


def _cell(v: Any) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "<td></td>"
    if isinstance(v, bool):
        return f"<td class=t>{E(str(v))}</td>"
    if isinstance(v, (int, float)):
        shown = f"{v:.6g}" if isinstance(v, float) else str(v)
        return f'<td data-v="{E(repr(v))}">{E(shown)}</td>'
    if not isinstance(v, str):
        v = json.dumps(v)
    return f"<td class=t>{E(v)}</td>"


def _table(columns: list[str], rows: list[list[Any]], cls: str = "sortable",
           sort_col: int | None = None, tid: str = "") -> str:
    attrs = f' class="{cls}"' + (f' id="{tid}"' if tid else "")
    if sort_col is not None:
        attrs += f' data-sort="{sort_col}"'
    head = "".join(f"<th>{E(c)}</th>" for c in columns)
    body = "\n".join("<tr>" + "".join(_cell(v) for v in r) + "</tr>" for r in rows)
    return f"<table{attrs}><thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody></table>"


def render(d: dict[str, Any], rows: list[dict[str, Any]], plots: dict[str, Any],
           ranks: dict[int, int], plot_format: str, refresh_s: float | None = None,
           config_text: str | None = None) -> str:
    """The page. ``d``: the status dict; ``rows``: export rows (one per trial); ``plots``:
    panel name -> PNG bytes (``plot_format`` "png") or SVG text ("svg"); ``refresh_s``: the
    browser reloads the page this often while the search runs (the live report);
    ``config_text``: the experiment's ``experiment.yaml``, what the search ran with."""
    metric = d["metric"]
    title = f"asha-hpc report: {d['experiment']}"
    reload = (f'<meta http-equiv="refresh" content="{max(int(refresh_s), 1)}">'
              if refresh_s and d["state"] == "running" else "")
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">' + reload,
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>{E(title)}</title><style>{CSS}</style></head><body>",
           f"<h1>{E(title)}</h1>",
           f'<p class="muted">state <b>{E(d["state"])}</b> &middot; generated '
           f'{E(time.strftime("%Y-%m-%d %H:%M:%S %Z"))} from {E(d["dir"])}</p>',
           "<pre>" + E("\n".join(_summary_lines(d))) + "</pre>"]

    captions = {"curves": "Learning curves, coloured by the highest rung each trial reached; "
                          "dashed lines mark the rung lengths.",
                "best": f"Best {metric} so far against the compute spent.",
                "rungs": "Trials that completed each rung, over time.",
                "agreement": "Each dot a trial with results at two consecutive lengths: its rank "
                             "at the shorter against its rank at the longer. On the dashed "
                             "diagonal the shorter results order the promoted trials as the "
                             "longer ones do; a cloud (or the other diagonal) means they do "
                             "not, and early stopping there (or a model sampler fitted on them) "
                             "may drop the configurations that would win."}
    out.append('<h2>Plots</h2><div class="plots">')
    for name in ("curves", "best", "rungs", "agreement"):
        p = plots.get(name)
        if p is None:
            continue
        if plot_format == "png":
            b64 = base64.b64encode(p).decode("ascii")
            img = f'<img class="plot" id="plot-{name}" alt="{E(name)}" src="data:image/png;base64,{b64}">'
        else:
            img = f'<div class="plot" id="plot-{name}">{p}</div>'
        out.append(f"<figure>{img}<figcaption class=muted>{E(captions[name])}</figcaption></figure>")
    out.append("</div>")

    rung_rows = d.get("rung_table") or []
    if rung_rows:
        out.append("<h2>Brackets and rungs</h2>")
        rung_cols = [h for _, h in RUNG_COLS] + [f"best {metric}"]
        out.append(_table(rung_cols, [[r.get(k) for k, _ in RUNG_COLS] + [r.get("best_metric")]
                                 for r in rung_rows], tid="rungs"))
        agree = [x.strip() for x in agreement_lines(d) if x.strip()]
        if agree:
            out.append('<p id="rung-agreement">' + "<br>".join(E(x) for x in agree) + "</p>")

    if d.get("top"):
        out.append(f"<h2>Top {len(d['top'])} trials</h2><ol>")
        for tr in d["top"]:
            logs = tr.get("logs") or {}
            lg = "" if not (logs.get("out") or logs.get("err")) else (
                f'<br><span class="muted">logs: {E(logs.get("out") or "-")} '
                f'{E(logs.get("err") or "-")}</span>')
            ck = (f'<br><span class="muted">checkpoint: {E(tr["checkpoint"])}</span>'
                  if tr.get("checkpoint") else "")
            out.append(f"<li>trial <b>{tr['trial_id']}</b>: {E(metric)}={E(metric_text(tr['metric']))} "
                       f"at length {tr['length']} ({E(tr['status'])})<br><code>"
                       f"{E(hp_text(tr['hparams']))}</code>{ck}{lg}</li>")
        out.append("</ol>")

    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k not in cols and k != "checkpoint"]
    table_rows = [[ranks.get(r["trial_id"])] + [r.get(c) for c in cols] for r in rows]
    out.append(f"<h2>All trials ({len(rows)})</h2>"
               '<p class="muted">Click a column header to sort. Rank: longest length reached '
               f"first, then {E(metric)}.</p>")
    out.append(_table(["rank"] + cols, table_rows, sort_col=0, tid="trials"))

    ev = d.get("events") or []
    if ev:
        out.append("<h2>Recent events</h2><pre>" + E("\n".join(
            f"{'+' + fmt_duration(e['elapsed_s']):>8}  {e['text']}" for e in ev)) + "</pre>")
    if config_text:  # a copied page still says what was searched, and how
        out.append('<h2>Configuration</h2><details id="config"><summary class="muted">'
                   "experiment.yaml, as the search read it</summary><pre>"
                   + E(config_text) + "</pre></details>")
    out.append(f"<script>{JS}</script></body></html>")
    return "\n".join(out) + "\n"
