"""``plan``: the brackets, rung lengths and training budget of a config, before anything runs.

    d = plan(cfg.searcher, space)          # JSON-able dict (``plan --json``)
    print(render_plan(cfg.searcher, space, d))

The preview is Determined's synchronous idealisation (spec section 4): with ``rt`` trials
entering rung ``i`` of a bracket, ``max(int(rt/d), 1)`` continue and the rest end there; all
that enter the top rung end there. ``total_units`` is the training those trials do (a trial that
ends at length ``l`` trained ``l`` units). The real asynchronous search differs: a rung with
fewer than ``d`` results promotes nobody, and a trial in the top ``1/d`` of the results in so far
goes on before its rung fills, so more trials go on than the preview says. ``render_plan`` says
by how much on the benchmarks (``ASYNC_EXTRA``).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .searcher.brackets import bracket_plan

if TYPE_CHECKING:  # pragma: no cover
    from .config import SearcherConfig
    from .space import Space


def bracket_preview(rung_lengths: list[int], max_trials: int, divisor: float,
                    at_least_one: bool = True) -> list[int]:
    """Trials ending at each rung of one bracket, synchronously idealised: Determined's preview
    lets at least one trial continue from every rung (``at_least_one``); the paper's rule
    promotes the top ``floor(n/d)`` of a rung's ``n`` results, so none when ``n < d``."""
    out = []
    rt = max_trials
    for i in range(len(rung_lengths)):
        if i == len(rung_lengths) - 1:
            out.append(rt)
            break
        cont = int(rt / divisor)
        if at_least_one and rt > 0:
            cont = max(cont, 1)
        out.append(rt - cont)
        rt = cont
    return out


def _floor_rule(cfg: SearcherConfig) -> bool:
    """Whether the search promotes only the top floor(n/d) of a rung (the paper's rule and
    Determined 0.37's; stop_once and Determined 0.38 let the first result of a rung go on)."""
    return (cfg.name in ("adaptive_asha", "async_halving") and not cfg.stop_once
            and getattr(cfg, "asha_rule", "paper") in ("paper", "determined_0.37"))


def starved_rung(rung_lengths: list[int], max_trials: int, divisor: float) -> tuple[int, int] | None:
    """(rung index, trials expected there) of the first rung expected to get fewer results
    than the divisor (none of which need go on under the floor rule), or None."""
    rt = max_trials
    for i in range(len(rung_lengths) - 1):
        if 0 < rt < divisor:
            return i, rt
        rt = int(rt / divisor)
    return None


def cheapest_top(rung_lengths: list[int], divisor: float) -> tuple[int, list[int]]:
    """Under the floor rule, the least training that takes one trial to a bracket's last rung,
    and how many trials must reach each rung for it. A rung promotes a trial that is in the top
    ``floor(n/d)`` of its ``n`` results so far: the first once it holds ``ceil(d)`` results, and
    at best one more with each result after that (each new one the best), so ``m`` promotions
    need ``ceil(d) - 1 + m`` results."""
    import math

    first = math.ceil(divisor - 1e-9)
    counts = [1]
    for _ in rung_lengths[:-1]:
        counts.insert(0, first - 1 + counts[0])
    prev, units = 0, 0
    for length, n in zip(rung_lengths, counts):
        units += n * (length - prev)
        prev = length
    return units, counts


def top_out_of_reach(cfg: SearcherConfig, space: Space) -> str | None:
    """Why ``max_compute`` lets no trial reach ``max_length`` (floor rule: a trial needs
    ``d`` results beside it at each rung below), or None."""
    cap = getattr(cfg, "max_compute", None)
    if cap is None or not _floor_rule(cfg):
        return None
    options = [(*cheapest_top(list(b.rung_lengths), float(cfg.divisor)), i, b)
               for i, b in enumerate(bracket_plan(cfg, space))]
    options = [o for o in options if o[1][0] <= o[3].max_trials] or options
    units, counts, i, b = min(options, key=lambda o: o[0])
    if cap >= units:
        return None
    path = ", ".join(f"{n} to {length:,}" for n, length in zip(counts, b.rung_lengths))
    return (f"searcher.max_compute {cap:,} {cfg.length_unit}: no trial can reach max_length "
            f"{cfg.max_length:,} within it. The cheapest way trains {units:,} (bracket {i}: "
            f"trials {path}; a rung promotes only from the top 1/{float(cfg.divisor):g} of its "
            f"results, rounded down): raise max_compute to {units:,} or more, or lower "
            f"max_length")


def plan(cfg: SearcherConfig, space: Space) -> dict[str, Any]:
    """``{"brackets": [{num_rungs, max_trials, max_concurrent_trials, rung_lengths}],
    "preview": {"<length>": trials ending there}, "total_units": N}`` plus ``searcher``,
    ``unit``, ``total_trials``, ``bracket_preview`` (per bracket, trials ending at each rung),
    ``hyperparameters`` (one line each) and ``warnings``."""
    infos = bracket_plan(cfg, space)
    d = float(cfg.divisor)
    ending: dict[int, int] = {}
    per_bracket = []
    warnings: list[str] = []
    for i, b in enumerate(infos):
        counts = bracket_preview(b.rung_lengths, b.max_trials, d)
        per_bracket.append(counts)
        for length, n in zip(b.rung_lengths, counts):
            ending[length] = ending.get(length, 0) + n
        if len(set(b.rung_lengths)) < len(b.rung_lengths):
            warnings.append(f"bracket {i} has rungs of equal length {b.rung_lengths}: max_length "
                            f"{cfg.max_length} is too short for {b.num_rungs} rungs with divisor {d:g}")
    # The least the search trains (every trial completing): under the floor rule a rung's
    # top floor(n/d) all go on once its n results are in, and a rung with fewer results than
    # the divisor need promote nobody, where the preview (Determined's) lets one go on.
    # Promotions made before a rung's results are all in can add more than either.
    least = 0
    why: list[str] = []
    for i, b in enumerate(infos):
        counts = bracket_preview(b.rung_lengths, b.max_trials, d, at_least_one=not _floor_rule(cfg))
        least += sum(length * n for length, n in zip(b.rung_lengths, counts))
        stuck = starved_rung(b.rung_lengths, b.max_trials, d) if _floor_rule(cfg) else None
        if stuck is not None:
            r, n = stuck
            why.append(f"bracket {i} expects {n} trial{'s' if n != 1 else ''} at "
                       f"{b.rung_lengths[r]:,} {cfg.length_unit}, fewer than the divisor {d:g}: "
                       f"a rung promotes the top 1/{d:g} of its results rounded down, so none "
                       f"goes on to {b.rung_lengths[r + 1]:,} unless promotions made early "
                       f"sent more trials there")
    # segments: a trial entering rung i runs one segment there (rung lengths are absolute)
    segments = sum(sum(counts[i:]) for counts in per_bracket for i in range(len(counts)))
    total_trials = sum(b.max_trials for b in infos)
    out_of_reach = top_out_of_reach(cfg, space)
    if out_of_reach:
        warnings.append(out_of_reach)
    if cfg.name in ("adaptive_asha", "async_halving", "random") and total_trials > cfg.max_trials:
        warnings.append(f"the brackets hold {total_trials} trials, more than max_trials "
                        f"{cfg.max_trials} (every bracket gets at least one)")
    return {
        "searcher": cfg.name,
        "unit": display_unit(cfg),
        "brackets": [{"num_rungs": b.num_rungs, "max_trials": b.max_trials,
                      "max_concurrent_trials": b.max_concurrent_trials,
                      "rung_lengths": list(b.rung_lengths)} for b in infos],
        "preview": {str(length): ending[length] for length in sorted(ending)},
        "total_units": sum(length * n for length, n in ending.items()),
        "least_units": least,  # what the search trains at least (every trial completing)
        "least_units_why": why,  # why that is below total_units, one line per bracket
        "max_compute": getattr(cfg, "max_compute", None),
        "total_trials": total_trials,
        "segments": segments,
        "bracket_preview": per_bracket,
        "hyperparameters": space.describe(),
        "warnings": warnings,
    }


# what the asynchronous search trained over the preview's total, measured on the four tasks of
# benchmarks/RESULTS.md section 8 (adaptive_asha, divisor 4, 16 workers)
ASYNC_EXTRA = ("the search is asynchronous: it promotes before a rung fills, and trained 1.1-1.2x this\n"
               "total with random sampling in benchmarks/RESULTS.md section 8")
MODEL_EXTRA = ("{sampler}: trials drawn from the model beat earlier ones more often, so more are promoted:\n"
               "1.3-1.5x random sampling's training on the real tasks there, up to 3x on a test function;\n"
               "for a fixed allocation set max_compute, and the search creates fewer trials to fit it")


def model_start_lines(cfg: SearcherConfig, space: Space) -> list[str]:
    """When the model sampler first draws: the results at one length it needs (Optuna's
    ``n_startup_trials``, fixed here by the number of searched hyperparameters)."""
    from .searcher import make_searcher

    model = getattr(make_searcher(cfg, space, 0), "_model", None)
    if model is None:
        return []
    need = model.fit_needs()[0]
    line = (f"{cfg.sampler}: its model first draws once one length holds {need} results (for "
            f"{len(model.dims)} searched hyperparameters); trials before that are random")
    if need * 2 > cfg.max_trials and not getattr(cfg, "warm_start", None):
        line += (f": with max_trials {cfg.max_trials}, few or none of this search's are the "
                 f"model's (a few times {need} trials, or warm_start, give it room)")
    return [line]


def compute_cap_lines(max_compute: int, total_units: int, amount: Any) -> list[str]:
    """What ``searcher.max_compute`` does to this plan, for ``render_plan``."""
    lines = [f"max_compute {amount(max_compute)}, a cap on all training: new trials stop once the "
             "trials so far",
             "are expected to need the rest, and no segment starts past it (a retry of a failed "
             "one aside)"]
    if total_units > max_compute:
        lines.append(f"the preview needs {total_units / max_compute:.2f}x that: expect fewer "
                     "trials than max_trials")
    else:
        lines.append(f"the preview fits ({total_units / max_compute:.0%} of it): the cap binds "
                     "if more trials are promoted than the preview says")
    return lines

SINGULAR = {"batches": "batch", "epochs": "epoch", "records": "record", "units": "unit"}


def unit_name(unit: str, n: int) -> str:
    """``batches`` -> ``batch`` for one (the length units of config.LENGTH_UNITS)."""
    return SINGULAR.get(unit, unit) if n == 1 else unit


def display_unit(cfg: SearcherConfig) -> str:
    """The length's unit as the user named it: batches/epochs/records, or a Determined 0.38
    ``time_metric`` of their own (``optimizer_steps``), else ``units``."""
    if cfg.length_unit == "units" and getattr(cfg, "time_metric", None):
        return str(cfg.time_metric)
    return cfg.length_unit


def _table(header: list[str], rows: list[list[str]], right: list[bool]) -> list[str]:
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]

    def line(r: list[str]) -> str:
        return "  ".join(c.rjust(w) if ra else c.ljust(w)
                         for c, w, ra in zip(r, widths, right)).rstrip()

    return [line(header)] + [line(r) for r in rows]


def render_plan(cfg: SearcherConfig, space: Space, plan_dict: dict[str, Any]) -> str:
    """The plan as a person reads it: brackets, preview, budget, hyperparameters."""
    unit = display_unit(cfg)

    def amount(n: int) -> str:
        return f"{n:,} {unit_name(unit, n)}"

    p = plan_dict
    head = f"searcher {cfg.name}"
    if cfg.name in ("adaptive_asha", "async_halving"):
        extra = f"divisor {cfg.divisor:g}"
        if cfg.name == "adaptive_asha":
            extra = (f"mode {cfg.mode}, " if not cfg.bracket_rungs else "bracket_rungs given, ") + extra
        if cfg.stop_once:
            extra += ", stop_once"
        if getattr(cfg, "asha_rule", "paper") != "paper":
            extra += f", {cfg.asha_rule} decisions"
        head += f" ({extra})"
    if cfg.metric:
        head += f", metric {cfg.metric} ({'smaller' if cfg.smaller_is_better else 'larger'} is better)"
    if getattr(cfg, "sampler", "random") != "random":
        head += f"; new trials: {cfg.sampler} ({cfg.random_fraction:.0%} random)"
        w = getattr(cfg, "warm_start", None)
        if w:
            head += f", its model warm-started from {w if isinstance(w, str) else ', '.join(w)}"
    given = len(getattr(cfg, "points_to_evaluate", None) or [])
    if given:
        head += f"; trial{'s 1-' if given > 1 else ' '}{given}: points_to_evaluate"
    if getattr(cfg, "until_exit", False):  # Determined 0.38 without a length
        lines = [head, "length: none given; each trial runs once, until its script ends", "",
                 f"total: {p['total_trials']:,} trials"]
        lines += [f"warning: {w}" for w in p.get("warnings", [])]
        lines += ["", "hyperparameters:"] + [f"  {x}" for x in space.describe()]
        return "\n".join(lines)
    lines = [head, f"max_length {amount(cfg.max_length)}"]
    rows = [[str(i), str(b["num_rungs"]), str(b["max_trials"]), str(b["max_concurrent_trials"]),
             ", ".join(f"{x:,}" for x in b["rung_lengths"]) + f" {unit}"]
            for i, b in enumerate(p["brackets"])]
    lines += [""] + _table(["bracket", "rungs", "trials", "concurrent", "rung targets"], rows,
                           [True, True, True, True, False])
    lines += ["", "preview (synchronous idealisation): trials ending at each length"]
    prev = [[amount(int(k)), str(v)] for k, v in p["preview"].items()]
    lines += _table(["length", "trials"], prev, [True, True])
    lines += ["", f"total: {p['total_trials']:,} trials, {amount(p['total_units'])} of training"]
    if p.get("least_units_why"):
        lines[-1] += f" in the preview; at least {amount(p['least_units'])}:"
        lines += [f"  {w}" for w in p["least_units_why"]]
    if p.get("max_compute"):
        lines += compute_cap_lines(p["max_compute"], p["total_units"], amount)
    if cfg.name in ("adaptive_asha", "async_halving"):
        lines += ASYNC_EXTRA.splitlines()
        if getattr(cfg, "sampler", "random") != "random":
            lines += MODEL_EXTRA.format(sampler=cfg.sampler).splitlines()
    if getattr(cfg, "sampler", "random") != "random":
        lines += model_start_lines(cfg, space)
    for w in p.get("warnings", []):
        lines.append(f"warning: {w}")
    lines += ["", "hyperparameters:"] + [f"  {x}" for x in space.describe()]
    return "\n".join(lines)
