"""``searcher.warm_start``: a model sampler (tpe, gp) that starts from earlier searches'
results instead of from nothing, as Ray Tune's ``evaluated_rewards`` and Optuna's
``add_trials`` do.

Each earlier experiment folder (one, or a list) is read once, when the search starts,
read-only (its master may still run). What the model needs from it goes into this search's
journal as one ``warm_start`` record per folder, so ``resume`` and the read-only views replay
those records and never open the earlier folders again: they may move or go.

Every trial of the earlier search with a result gives its configuration, as one of this
space (``Space.config_of``: the searched values, this space's constants), and its result at
each length, as a loss (lower is better, by the earlier search's ``smaller_is_better``). Its
results count as this search's at the same length. A trial whose configuration this space
cannot hold (a hyperparameter it lacks, a value outside a narrowed range) is left out. An
earlier search that was warm-started itself passes on its own ``warm_start`` records' results
too, so a chain of searches keeps everything before it. A trial that an earlier folder of the
list already gave (the same configuration and results: a listed folder that was warm-started
from another listed folder) is given once.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from ..config import ExperimentConfig
from ..errors import AshaError
from ..protocol.records import Kind, WarmStart

FIELD = "searcher.warm_start"


def source_folders(cfg: ExperimentConfig) -> list[Path]:
    """The earlier experiment folders the config names (relative: to the config's folder)."""
    w = cfg.searcher.warm_start
    names = [] if w is None else [w] if isinstance(w, str) else w
    return [(Path(cfg.config_dir) / Path(n).expanduser()).resolve() for n in names]


def read_warm_start(cfg: ExperimentConfig, journaled: list[dict[str, Any]] | tuple[()] = ()
                    ) -> tuple[list[WarmStart], list[str]]:
    """The ``warm_start`` records for a new search of ``cfg``, one per folder it names (none
    without warm_start), and warnings for the user; AshaError naming the field and what to do
    when a folder cannot serve. The folders of ``journaled`` (records already in the journal)
    are not read again."""
    out: list[WarmStart] = []
    warnings: list[str] = []
    # trials given by an earlier folder of the list
    seen = {_key(t["hparams"], t["losses"]) for r in journaled for t in r["trials"]}
    done = {r["source"] for r in journaled}
    folders = source_folders(cfg)
    for i, src in enumerate(folders):
        if src in folders[:i]:  # two spellings of one folder
            raise AshaError(f"{FIELD}: names {src} twice: give each folder once")
        if str(src) in done:
            continue
        rec, warned = _read_one(cfg, src, seen)
        out.append(rec)
        warnings += warned
    return out, warnings


def _read_one(cfg: ExperimentConfig, src: Path, seen: set[str]) -> tuple[WarmStart, list[str]]:
    """One folder's record; ``seen`` (canonical trials already given) grows with its trials."""
    from ..views.status import AGREE_LOW, open_experiment, rung_agreement

    if not src.is_dir():
        raise AshaError(f"{FIELD}: {src} is not a folder: give an earlier search's experiment "
                        f"folder (a relative path starts at the config's folder, "
                        f"{cfg.config_dir})")
    try:
        _, old, records, st = open_experiment(src)
    except AshaError as e:
        raise AshaError(f"{FIELD}: {e}") from None
    except (OSError, ValueError) as e:  # a config or journal that does not load
        raise AshaError(f"{FIELD}: cannot read {src}: {e}; give a folder `asha-hpc run` "
                        "made") from None
    now, was = cfg.searcher, old.searcher
    if (was.metric, was.length_unit) != (now.metric, now.length_unit):
        raise AshaError(
            f"{FIELD}: {src} searched on {was.metric!r} in {was.length_unit}, this search on "
            f"{now.metric!r} in {now.length_unit}: its results would teach the model another "
            "goal; warm-start from a search of the same metric and length unit")
    sign = 1.0 if was.smaller_is_better else -1.0
    found: list[tuple[str, Any, list[list[Any]]]] = [  # (where, configuration, losses)
        (f"trial {t.id}", t.hparams,
         [[int(length), _loss(sign, m)] for length, m in sorted(t.rung_metrics.items())])
        for t in sorted(st.trials.values(), key=lambda t: t.id) if t.rung_metrics]
    # a search that was warm-started itself passes on what its model had: a chain of
    # searches keeps every result before it
    inherited = [(f"a result {src.name} was warm-started from", t["hparams"], t["losses"])
                 for r in records if r["kind"] == Kind.WARM_START for t in r["trials"]]
    space = cfg.space()
    trials: list[dict[str, Any]] = []
    left_out, why, kept_inherited = 0, "", 0
    repeated = 0
    for i, (where, config, losses) in enumerate(inherited + found):
        hp, reason = space.config_of(config)
        if hp is None:
            left_out += 1
            why = why or f"{where}: {reason}"
            continue
        key = _key(hp, losses)
        if key in seen:
            repeated += 1
            continue
        seen.add(key)
        trials.append({"hparams": hp, "losses": losses})
        kept_inherited += i < len(inherited)
    if not trials and not repeated:  # (all given already by an earlier folder: in either order)
        detail = (f"none of its {left_out} trials with results fits this search's "
                  f"hyperparameters ({why})" if left_out else "it has no results yet")
        raise AshaError(f"{FIELD}: {src}: {detail}; warm-start from a search of these "
                        "hyperparameters, or remove warm_start")
    warnings = []
    low = [r for r in rung_agreement(st) if r["rank_corr"] is not None
           and r["rank_corr"] < AGREE_LOW]
    if low:  # what made a warm start lose to starting over (benchmarks/RESULTS.md 8c)
        r = min(low, key=lambda r: r["rank_corr"])
        warnings.append(
            f"{FIELD}: in {src}, the trials promoted from length {r['from']} to {r['to']} "
            f"ranked at {r['rank_corr']:.2f} there (Spearman, {r['trials']} trials): its short "
            "results order configurations unlike its long ones and may teach the model the "
            "wrong region; on such a task random sampling does as well as a model, with or "
            "without warm_start")
    return WarmStart(source=str(src), trials=trials, left_out=left_out, why=why,
                     inherited=kept_inherited), warnings


def _key(hparams: Any, losses: Any) -> str:
    """A trial's configuration and results as one string: the same trial given twice."""
    return json.dumps([hparams, losses], sort_keys=True, default=str)


def _loss(sign: float, metric: Any) -> float | None:
    """A result as a loss; None (the worst) for a diverged one."""
    try:
        v = sign * float(metric)
    except (TypeError, ValueError, OverflowError):
        return None
    return v if math.isfinite(v) else None


def describe(warm: dict[str, Any]) -> str:
    """``status``: "warm-started from 412 results of 120 trials of /runs/q1 (3 left out)"."""
    sources = warm.get("sources") or [warm["source"]]
    out = (f"warm-started from {warm['results']} results of {warm['trials']} trials of "
           f"{' and '.join(sources) if len(sources) < 3 else ', '.join(sources)}")
    if warm.get("inherited"):
        out += (f" ({warm['inherited']} of them from the search it was warm-started from)"
                if len(sources) == 1 else
                f" ({warm['inherited']} of them from searches those were warm-started from)")
    if warm["left_out"]:
        out += f" ({warm['left_out']} left out: not in this space)"
    need, most = warm.get("model_needs"), warm.get("most_at_one_length")
    if need is not None and most is not None and most < need:
        out += (f"; too few at any one length for the model (it needs {need}, the most is "
                f"{most}{' at length ' + str(warm['at_length']) if warm.get('at_length') else ''})"
                f": the first trials are drawn at random until this search adds results")
    return out
