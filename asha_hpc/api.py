"""Searches from Python: ``asha_hpc.run`` and ``asha_hpc.resume`` (Ray Tune's ``Tuner.fit()``,
Optuna's ``study.optimize``), for a script or a notebook, and ``asha_hpc.load`` to read one.

    import asha_hpc
    from train import train
    result = asha_hpc.run({"searcher": {...}, "hyperparameters": {...}}, entrypoint=train,
                          exp_dir="runs/q1")
    result.best["hparams"], result.dataframe()

The master runs in this process until the search ends, as ``asha-hpc run`` does, and prints
what that command prints; the jobs are processes (or Slurm jobs) of their own, which import the
training function by name from its file.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FunctionType, ModuleType
from typing import Any

from .errors import AshaError, ConfigError, shell_word

CONFIG_ARG = "asha_hpc.run(config=...)"  # where a dict's problems are, in messages


class SearchFailed(AshaError):
    """The search failed (the master said why as it stopped); ``result`` reads what it
    computed, and ``asha_hpc.resume(result.exp_dir, retry_failed=True)`` goes on once fixed."""

    def __init__(self, message: str, result: SearchResult) -> None:
        super().__init__(message)
        self.result = result


@dataclass(frozen=True)
class SearchResult:
    """A search as it stood when ``run``, ``resume`` or ``load`` returned: its ``status``, its
    ``best`` trial and the ids of its ``failed`` trials, all of one moment (``load`` again for a
    newer one). ``top``, ``trials`` and ``dataframe`` read the folder when called.

    ``status``: ``completed``; ``stopped`` (Ctrl-C, a signal, ``pause``: ``resume`` goes on);
    ``cancelled``. A failed search raises ``SearchFailed`` from ``run`` and ``resume``, and is
    ``failed`` where ``load`` reads it; a search another master runs is ``running`` there.
    ``best``: the best trial as ``asha-hpc best --json`` lists it (trial_id, metric, length,
    hparams, seed, checkpoint as a Path, metrics, state, logs), or None where no trial reported
    its metric."""

    exp_dir: Path
    status: str
    metric: str
    best: dict[str, Any] | None = None
    failed: tuple[int, ...] = ()

    @classmethod
    def of(cls, exp: Any, st: Any, records: list[dict[str, Any]],
           status: str | None = None) -> SearchResult:
        """The result of the search in ``exp`` whose state replayed from ``records`` is
        ``st``."""
        from .views.status import best_rows

        rows = [_as_paths(r) for r in best_rows(exp, st, records, 1)]
        return cls(exp_dir=exp.root, status=status or st.lifecycle, metric=st.cfg.searcher.metric,
                   best=rows[0] if rows else None,
                   failed=tuple(sorted(t.id for t in st.trials.values()
                                       if st.status_of(t) == "failed")))

    def top(self, n: int = 5) -> list[dict[str, Any]]:
        """The ``n`` best trials, best first, read now, as ``best`` is listed."""
        from .views.status import best_rows, open_experiment

        exp, _, records, st = open_experiment(self.exp_dir)
        return [_as_paths(r) for r in best_rows(exp, st, records, n)]

    @property
    def best_hparams(self) -> dict[str, Any] | None:
        """The best trial's hyperparameters (Optuna's ``best_params``)."""
        return None if self.best is None else self.best["hparams"]

    @property
    def best_value(self) -> float | None:
        """The best trial's metric at the longest length it reached (Optuna's ``best_value``);
        NaN for a search whose every trial diverged."""
        if self.best is None:
            return None
        return math.nan if self.best["metric"] is None else self.best["metric"]

    def trials(self) -> list[dict[str, Any]]:
        """One dict per trial, read now, as ``asha-hpc export`` writes them."""
        from .views.results import trials

        return trials(self.exp_dir)

    def dataframe(self, curves: bool = False) -> Any:
        """The trials (or, with ``curves=True``, the learning curves) as a pandas DataFrame,
        read now (pandas needed)."""
        from .views.results import dataframe

        return dataframe(self.exp_dir, curves=curves)


def _as_paths(row: dict[str, Any]) -> dict[str, Any]:
    """A ``best --json`` row with its checkpoint a Path, as ``trial.latest_checkpoint`` is."""
    if row.get("checkpoint") is not None:
        row = dict(row, checkpoint=Path(row["checkpoint"]))
    return row


def run(config: str | Path | Mapping[str, Any], *, entrypoint: Callable[..., Any] | str | None = None,
        exp_dir: str | Path | None = None, backend: str | None = None,
        report_every_s: float | None = None, quiet: bool = False) -> SearchResult:
    """Run a search to its end and return its result.

    ``config``: a YAML file's path, or the same as a dict (its relative paths, ``entrypoint``'s
    module among them, are relative to the current folder). ``entrypoint``: the training
    function, or ``"module:function"``, where the config has none; a function must be defined at
    the top level of a ``.py`` file that the jobs can import (not in a notebook's cell, nor in
    the script that calls ``run``). ``exp_dir``: a new folder for the experiment (default: the
    config's ``experiment_dir``, else one under ``asha_runs/``). ``backend``: ``local`` or
    ``slurm``, over the config's (``simulated`` runs no code: virtual time and made-up curves,
    as ``asha-hpc simulate``). ``report_every_s``: how often the live
    ``report.html`` is written (0: never; default as ``asha-hpc run``'s). ``quiet``: no
    progress line while the search runs, only the last one (``asha-hpc run --quiet``).

    Raises ``ConfigError`` for a config that cannot run (nothing is started), and
    ``SearchFailed`` where the search failed."""
    from .launch import start_search

    cfg = config_from(config, entrypoint, {"backend": backend} if backend else None)
    _refuse_a_finished_folder(exp_dir)
    _, st, exp = start_search(cfg, exp_dir, _report_every(report_every_s), in_python=True,
                              quiet=quiet)
    return _ended(exp.root, st)


def resume(exp_dir: str | Path, *, retry_failed: bool = False, backend: str | None = None,
           report_every_s: float | None = None, quiet: bool = False) -> SearchResult:
    """Go on with a search that stopped (Ctrl-C, a crash, ``pause``), or an ended one whose
    failed trials ``retry_failed`` trains again (``asha-hpc resume``'s options)."""
    from .config import load_config
    from .launch import refuse_someone_elses_running, resume_search
    from .protocol.expdir import ExpDir

    refuse_someone_elses_running(Path(exp_dir))
    exp = ExpDir.open(Path(exp_dir))
    cfg = load_config(exp.config, overrides={"backend": backend} if backend else None)
    _, st = resume_search(exp, cfg, force=False, report_every_s=_report_every(report_every_s),
                          retry_failed=retry_failed, in_python=True, quiet=quiet)
    return _ended(exp.root, st)


def load(exp_dir: str | Path) -> SearchResult:
    """The results of a search in its folder, without running it (Optuna's ``load_study``,
    Ray Tune's ``ResultGrid`` of a restored run): also while another master runs it (status
    ``running``), and for a failed search (status ``failed``: nothing is raised)."""
    from .views.status import open_experiment

    exp, _, records, st = open_experiment(exp_dir)
    return SearchResult.of(exp, st, records)


def watch(exp_dir: str | Path, *, every_s: float = 5.0, wait_s: float = 60.0) -> SearchResult:
    """``asha-hpc status --watch`` for a notebook (Ray Tune's live table): the status, redrawn
    in place in the cell's output every ``every_s`` seconds until the search is over, or no
    master runs it (stopped: nothing changes until a resume); an interrupt of the kernel stops
    the watching, not the search. Outside a notebook it prints as ``status --watch`` does. A
    folder a master was just started on is waited for up to ``wait_s`` seconds (it holds an
    experiment once the master has read the config). The search as it stands at the end
    (``load``)."""
    import sys
    import time

    from .errors import AshaError
    from .protocol.expdir import holds_experiment, submitted_master
    from .views.status import status_now
    from .views.text import in_notebook, watch_notebook
    from .views.text import watch as watch_text

    path = Path(exp_dir)
    deadline = time.monotonic() + wait_s
    while not holds_experiment(path) and submitted_master(path.resolve()) is None:
        if time.monotonic() > deadline:
            raise AshaError(f"{path}: no experiment there after {wait_s:g} s; start one with "
                            f"asha_hpc.run or `asha-hpc run CONFIG --exp-dir {path}`")
        time.sleep(min(0.5, every_s))
    interval = max(every_s, 0.2)
    if in_notebook():
        watch_notebook(lambda: status_now(path), interval)
    else:
        watch_text(lambda: status_now(path), interval, out=sys.stdout, stopped_too=True)
    return load(path)


def pause(exp_dir: str | Path, *, wait_s: float = 60.0) -> SearchResult:
    """Stop a search's running jobs, each saving where it is, and its master
    (``asha-hpc pause``): a search that another process runs (a terminal, another notebook, the
    master's Slurm job), or whose master a Ctrl-C stopped with jobs still running or waiting for
    work. ``resume`` goes on from their checkpoints, counting no failure. Waits up to ``wait_s``
    for a running master to act; the result's ``status`` is ``stopped`` once it has, still
    ``running`` if it has not yet."""
    return _stop(exp_dir, "pause", wait_s)


def cancel(exp_dir: str | Path, *, wait_s: float = 60.0) -> SearchResult:
    """End a search for good, cancelling its running jobs (``asha-hpc cancel``): its results
    stay readable (``load``). Waits up to ``wait_s`` for a running master to act; the result's
    ``status`` is ``cancelled`` once it has, still ``running`` if it has not yet."""
    return _stop(exp_dir, "cancel", wait_s)


def _stop(exp_dir: str | Path, how: str, wait_s: float) -> SearchResult:
    import sys

    from .launch import stop_search

    line = stop_search(Path(exp_dir), how, wait_s, in_python=True)
    if line:
        print(f"asha-hpc: {line}", file=sys.stderr)
    return load(exp_dir)


def _refuse_a_finished_folder(exp_dir: str | Path | None) -> None:
    """A cell run again with its ``exp_dir``: say how to go on in Python's words (a running
    master's folder is refused by ``start_search``, as for the command)."""
    from .protocol.expdir import ExpDir, holds_experiment
    from .views.status import master_alive

    if exp_dir is None or not holds_experiment(Path(exp_dir)):
        return
    root = Path(exp_dir).resolve()
    if not master_alive(ExpDir(root)):
        raise AshaError(f"{root} already holds an experiment: asha_hpc.load({str(root)!r}) "
                        f"reads its results, asha_hpc.resume({str(root)!r}) continues it "
                        f"(retry_failed=True: its failed trials too), or pass another exp_dir")


def _report_every(seconds: float | None) -> float:
    from .views.livereport import DEFAULT_EVERY_S

    return DEFAULT_EVERY_S if seconds is None else seconds


def _ended(root: Path, st: Any) -> SearchResult:
    from .protocol.expdir import ExpDir
    from .protocol.journal import read_journal

    exp = ExpDir(root)
    records = read_journal(exp.journal)[0]
    result = SearchResult.of(exp, st, records,
                             status=st.lifecycle if st.lifecycle != "running" else "stopped")
    if st.lifecycle == "failed":
        # the master's message, which printed above in full, says what to do in the command's
        # words: here in Python's
        first = (st.message or "the search failed").partition("\n")[0].replace(
            f"`asha-hpc resume {shell_word(root)} --retry-failed`",
            f"asha_hpc.resume({str(root)!r}, retry_failed=True)")
        raise SearchFailed(f"{root}: {first} (what it computed: this exception's .result)",
                           result)
    return result


def config_from(config: str | Path | Mapping[str, Any],
                entrypoint: Callable[..., Any] | str | None = None,
                overrides: dict[str, Any] | None = None) -> Any:
    """The ``ExperimentConfig`` that ``run`` starts: read from a file, or checked as a file's
    would be from a dict (every problem named at once, as for a file)."""
    from .config import load_config, parse_config

    if isinstance(config, (str, Path)):
        if entrypoint is not None:
            raise ConfigError([f"entrypoint: give it in {config} (a file's config names its "
                               f"code itself), or pass the config as a dict"])
        return load_config(config, overrides)
    if not isinstance(config, Mapping):
        raise ConfigError([f"config: a YAML file's path or a dict, got {type(config).__name__}"])
    problems: list[tuple[str, str]] = []  # (where, why) of the values YAML could not hold
    raw = plain(dict(config), "", problems)
    given = raw.get("entrypoint")
    if entrypoint is not None:
        if given is not None or raw.get("command") is not None:
            raise ConfigError([f"entrypoint: given twice (in the config, {given or 'command'}, "
                               f"and as the entrypoint argument): keep one"], CONFIG_ARG)
        given = raw["entrypoint"] = entrypoint
    if isinstance(given, ModuleType):
        names = sorted(n for n, v in vars(given).items() if isinstance(v, FunctionType)
                       and v.__module__ == given.__name__ and not n.startswith("_"))
        raise ConfigError([f"entrypoint: the module {given.__name__}, not a function: pass "
                           f"{given.__name__}.FUNCTION"
                           + (f" (it has: {', '.join(names[:10])})" if names else "")], CONFIG_ARG)
    if isinstance(given, str):
        raw["entrypoint"] = _named(given)
    elif callable(given):
        raw["entrypoint"] = function_name(given)
        raw.setdefault("name", getattr(given, "__name__", "experiment"))
    try:
        cfg = parse_config(raw, str(Path.cwd()), overrides=overrides)
    except ConfigError as e:  # with the values left out above: their own problems first
        dropped = [w for w, _ in problems]
        rest = [m for m in e.problems if not any(
            m.startswith(d) and m[len(d):len(d) + 1] in (":", ".", "[") for d in dropped)]
        raise ConfigError([f"{w}: {why}" for w, why in problems] + rest, CONFIG_ARG) from None
    if problems:
        raise ConfigError([f"{w}: {why}" for w, why in problems], CONFIG_ARG)
    cfg.source = CONFIG_ARG
    return cfg


def function_name(fn: Callable[..., Any]) -> str:
    """``module:function`` of a function that a job can import by name, or why it cannot."""
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None)
    shown = getattr(fn, "__name__", None) or repr(fn)
    if not isinstance(module, str) or not isinstance(qualname, str):
        raise ConfigError([f"entrypoint: {shown} is not a function that a job can import by "
                           f"name (a functools.partial, an object?): give the name of a "
                           f"module-level one as text (entrypoint='module:train', for a "
                           f"`train = functools.partial(...)` in module.py), or define a function "
                           f"at the top level of a .py file"], CONFIG_ARG)
    if "<" in qualname:  # <lambda>, or a function defined inside another's body
        raise ConfigError([f"entrypoint: {module}.{qualname} is defined inside a function (or is "
                           f"a lambda): a job imports its function by name, so define it at the "
                           f"top level of a .py file"], CONFIG_ARG)
    if "." in qualname:
        raise ConfigError([f"entrypoint: {module}.{qualname} is a method: a job imports a "
                           f"module-level function by name; define one at the top level of a .py "
                           f"file (def train(trial): ...) that builds what the method needs and "
                           f"calls it"], CONFIG_ARG)
    return f"{_importable(module)}:{qualname}"


def _importable(module: str) -> str:
    """``module`` as a job imports it. A job looks in the current folder (a dict config's) and
    on the interpreter's path (PYTHONPATH, site-packages), not where this process found the
    module otherwise: the running script's folder, or a folder added to sys.path. A module found
    only there is named by its file; a package's module cannot be, and is refused."""
    import sys

    file = getattr(sys.modules.get(module), "__file__", None)
    if module == "__main__" or not file:
        return module  # (check_entrypoint says why a notebook's cannot be a job's)
    path = Path(file).resolve()
    root = path.parents[module.count(".") + (path.name == "__init__.py")]
    if root == Path.cwd().resolve():
        return module
    told, found = _found_by_a_job(module.partition(".")[0])
    if not told or found == root:
        return module
    if "." not in module and path.name != "__init__.py":
        return str(path)
    raise ConfigError([f"entrypoint: jobs would not find {module}: it is found from {root}, "
                       f"which is neither the current folder nor on the interpreter's path: run "
                       f"from {root}, or add it to PYTHONPATH"], CONFIG_ARG)


_FIND = ("import importlib.util, os, sys\n"
         "s = importlib.util.find_spec(sys.argv[1])\n"
         "where = list(s.submodule_search_locations or []) if s else []\n"
         "print(os.path.dirname(where[0] if where else (s.origin or '')) if s else '')")


def _found_by_a_job(top: str) -> tuple[bool, Path | None]:
    """(whether it could tell, the folder in which a new Python process started here, as a
    job is, finds ``top``: None for nowhere)."""
    import os
    import subprocess
    import sys

    try:
        out = subprocess.run([sys.executable, "-c", _FIND, top], capture_output=True, text=True,
                             timeout=60, env=os.environ.copy())
    except (OSError, subprocess.SubprocessError):
        return False, None
    if out.returncode != 0:
        return False, None
    found = out.stdout.strip()
    return True, Path(found).resolve() if found else None


def _named(entrypoint: str) -> str:
    """A ``module:function`` given as text, as a job imports it: the module this process
    imported under that name, where the job would find another or none, is named by its file;
    one that a job would not find at all is refused now, not in the first job."""
    import sys

    module, _, function = entrypoint.rpartition(":")
    if not module or "/" in module or module.endswith(".py") or module == "__main__":
        return entrypoint  # a file's path, or what check_entrypoint refuses with its reason
    if getattr(sys.modules.get(module), "__file__", None):
        return f"{_importable(module)}:{function}"
    told, found = _found_by_a_job(module.partition(".")[0])
    if told and found is None:
        raise ConfigError([f"entrypoint: jobs would not find module '{module}': they look in "
                           f"the current folder ({Path.cwd()}) and on the interpreter's path. "
                           f"Pass the function itself (entrypoint={function}, once imported), "
                           f"give its file ('path/to/{module.replace('.', '/')}.py:{function}'), "
                           f"or run from its folder"], CONFIG_ARG)
    return entrypoint


_DROPPED = object()  # a value plain() refused: left out of the config it checks


def plain(value: Any, where: str, problems: list[tuple[str, str]]) -> Any:
    """``value`` as YAML would give it (dicts, lists, str, int, float, bool, None): tuples,
    ranges and numpy's arrays as lists, numpy's scalars as Python's, paths as text. Anything
    else is added to ``problems`` by its key and left out."""
    if value is None or type(value) in (str, bool, int, float):
        return value
    for kind in (bool, int, float, str):  # numpy.float64 is a float YAML cannot write
        if isinstance(value, kind):
            return kind(value)
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                problems.append((where or "(top level)", f"key {k!r} is not text: write "
                                                         f"{str(k)!r}"))
                continue
            got = plain(v, f"{where}.{k}" if where else k, problems)
            if got is not _DROPPED:
                out[k] = got
        return out
    if isinstance(value, (list, tuple, range)):
        items = [plain(v, f"{where}[{i}]", problems) for i, v in enumerate(value)]
        return [v for v in items if v is not _DROPPED]
    if isinstance(value, Path):
        return str(value)
    shape = getattr(value, "shape", None)
    if shape is not None and shape != () and callable(getattr(value, "tolist", None)):
        return plain(value.tolist(), where, problems)  # np.logspace(...) as vals
    item = getattr(value, "item", None)  # numpy's scalars
    if callable(item) and shape == ():
        return plain(item(), where, problems)
    if callable(value) and where == "entrypoint":
        return value  # made a name by config_from
    spec = foreign_range(value)
    if spec is not None:
        problems.append((where, f"{type(value).__module__}.{type(value).__name__} is another "
                                f"library's search space: write {spec}"))
    elif isinstance(value, (set, frozenset)):
        problems.append((where, "a set has no order: write a list"))
    else:
        problems.append((where, f"{type(value).__name__} {value!r} is not a config value "
                                f"(YAML's types: text, numbers, true/false, lists and mappings)"))
    return _DROPPED


def foreign_range(value: Any) -> str | None:
    """The hyperparameter a Ray Tune (``tune.loguniform``, ``tune.randint``, ``tune.choice``)
    or Optuna (``FloatDistribution``, ...) search-space object means, as this config writes it;
    None for anything else."""
    kind, module = type(value).__name__, type(value).__module__
    attrs = vars(value) if hasattr(value, "__dict__") else {}
    if module.startswith("ray.tune"):
        sampler = attrs.get("sampler")
        q = getattr(sampler, "q", None)
        log = "LogUniform" in type(getattr(sampler, "sampler", sampler)).__name__
        if kind == "Categorical":
            return f"{{type: categorical, vals: {list(attrs.get('categories', []))!r}}}"
        if kind in ("Float", "Integer") and q is None:
            lo, hi = attrs.get("lower"), attrs.get("upper")
            # randint's upper bound is excluded; maxval is included
            if kind == "Integer" and isinstance(hi, int):
                return f"{{type: int, minval: {lo}, maxval: {hi - 1}{', log: true' if log else ''}}}"
            return f"{{type: double, minval: {lo}, maxval: {hi}{', log: true' if log else ''}}}"
        if q is not None:
            return "a categorical of the values: {type: categorical, vals: [...]}"
        return None
    if module.startswith("optuna.distributions"):
        if kind == "CategoricalDistribution":
            return f"{{type: categorical, vals: {list(attrs.get('choices', []))!r}}}"
        if kind in ("FloatDistribution", "IntDistribution"):
            step = attrs.get("step")
            if step not in (None, 1) or (step == 1 and kind == "FloatDistribution"):
                return "a categorical of the values: {type: categorical, vals: [...]}"
            t = "double" if kind == "FloatDistribution" else "int"
            return (f"{{type: {t}, minval: {attrs.get('low')}, maxval: {attrs.get('high')}"
                    f"{', log: true' if attrs.get('log') else ''}}}")
    return None
