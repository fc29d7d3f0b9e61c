"""A Determined experiment config (0.2x to 0.38) read as it is: ``translate`` turns the keys
that mean something here into asha_hpc's and names every other one, one line per key.

    raw, notes, problems = translate(read_yaml(text), config_dir)

``notes`` are what ``plan``, ``plan --json`` and ``run`` print as warnings (the mapped keys say
what they became, the ignored ones say so); ``problems`` are errors (a searcher that does not
exist here). The result is asha_hpc's own config shape: the rest of the loader validates it as
it validates any file, so there is one set of rules.

Mapping (Determined reference: docs/reference/experiment-config-reference.rst, 0.38):

- ``searcher.time_metric`` + ``searcher.max_time`` (0.38) -> ``max_length`` in that unit; the
  time metric's name stays (``searcher.time_metric``): the Core API shim reads the trial's
  progress from the validation metric of that name.
- ``searcher`` with no length at all (0.38 ``single``/``random``/``grid``: the script decides
  how long it trains) -> one segment per trial that ends when the script ends.
- ``resources.slots_per_trial`` -> GPUs per trial (``slurm.gpus_per_node``, ``local.gpus_per_trial``
  where this machine has that many); 0 -> CPU-only trials (both 0).
- ``checkpoint_storage`` (``shared_fs``: ``host_path`` / ``storage_path``; ``directory``:
  ``container_path``) -> the folder the trials' checkpoints live in.
- Determined's own ``slurm`` keys (``slots_per_node``, ``gpu_type``, ``sbatch_args``) sit in the
  same section as ours; ``sbatch_args`` become ``additional_parameters``.
"""
from __future__ import annotations

import copy
import shlex
from pathlib import Path
from typing import Any

# Determined keys with no meaning here, and why (shown to the user, one line each).
IGNORED: dict[str, str] = {
    "environment": "jobs run in the environment `asha-hpc run` starts from (a venv; on Slurm, "
                   "slurm.setup lines such as `module load`)",
    "bind_mounts": "jobs see the shared filesystem directly (no containers)",
    "records_per_epoch": "lengths are in the unit the script counts",
    "min_validation_period": "the script validates when it likes; the searcher reads the report "
                             "at each rung",
    "min_checkpoint_period": "the script checkpoints when it likes",
    "perform_initial_validation": "the script validates when it likes",
    "scheduling_unit": "lengths are in the unit the script counts",
    "optimizations": "Trial-class settings (use them in your own training loop)",
    "profiling": "no profiler is attached (use torch.profiler in the script)",
    "data_layer": "passed to Trial classes only",
    "labels": "no experiment tags (the experiment folder name identifies it)",
    "workspace": "no workspaces (experiment folders on the filesystem)",
    "project": "no projects (experiment folders on the filesystem)",
    "debug": "see the jobs' logs in the experiment folder",
    "checkpoint_policy": "checkpoints are kept as checkpoint_storage.save_* says",
    "log_policies": "a failing trial is retried per max_restarts",
    "retention_policy": "logs stay in the experiment folder",
    "preemption_timeout": "jobs get slurm.signal_delay_s before their time limit",
    "integrations": "no Pachyderm/webhook integration",
    "internal": "Determined internal settings",
    "pbs": "PBS is not a backend here (backend: local or slurm)",
    "resources.max_slots": "concurrency is searcher.max_concurrent_trials",
    "resources.slots": "a command task's setting (trials use slots_per_trial)",
    "resources.weight": "Slurm's fair share decides (slurm.qos / slurm.account)",
    "resources.priority": "Slurm decides (slurm.qos)",
    "resources.resource_pool": "use slurm.partition",
    "resources.shm_size": "jobs use the node's /dev/shm",
    "resources.devices": "jobs see the node's devices",
    "resources.is_single_node": "slurm.nodes says how many nodes a trial spans",
    "resources.native_parallel": "removed in Determined too",
    "resources.agent_label": "use slurm.constraint",
    "searcher.source_trial_id": "no warm start from another experiment's trial",
    "searcher.source_checkpoint_uuid": "no warm start from another experiment's checkpoint",
    "searcher.max_concurrent_steps": "Determined < 0.17 setting",
    "searcher.budget": "Determined < 0.17 setting; searcher.max_compute caps the training of "
                       "the whole search here (in max_length's unit)",
    "searcher.train_stragglers": "Determined < 0.17 setting",
    "slurm.gpu_type": "use slurm.constraint or slurm.additional_parameters {gres: ...}",
    "checkpoint_storage.propagation": "no bind mounts",
}

UNSUPPORTED_SEARCHERS = {
    "custom": "a custom searcher runs its own search loop",
    "pbt": "population-based training mutates running trials",
    "sync_halving": "removed in Determined 0.17",
    "adaptive": "removed in Determined 0.17",
    "adaptive_simple": "removed in Determined 0.17",
}
SUPPORTED = "adaptive_asha, async_halving, random, grid, single"
UNITS = ("batches", "epochs", "records")
TIMELESS = ("single", "random", "grid")  # 0.38: these need no length


def translate(raw: Any, config_dir: str = ".") -> tuple[Any, list[str], list[str]]:
    """``(raw', notes, problems)``: the Determined keys mapped or removed (see module doc). A
    file that is not a mapping is returned as it is (the loader reports it)."""
    if not isinstance(raw, dict):
        return raw, [], []
    d = copy.deepcopy(raw)
    notes: list[str] = []
    problems: list[str] = []
    _environment(d, notes)  # before the ignored keys: its variables are kept
    trial_class = pytorch_trial_spec(d.get("entrypoint"), config_dir)
    periods = _trial_class_settings(d) if trial_class else []
    for key in list(d):
        if key in IGNORED:
            _ignore(d, key, key, notes)
    if isinstance(d.get("hyperparameters"), dict):
        d["hyperparameters"] = _null_constants(d["hyperparameters"])
    _searcher(d, notes, problems)
    _slurm(d, notes, problems)  # before resources: slots_per_node says the GPUs per node
    _resources(d, notes)
    _launcher(d, notes, problems)  # after resources: torchrun starts slots_per_trial ranks
    if trial_class:
        _run_trial_class(d, trial_class, periods, notes)
    _checkpoint_storage(d, config_dir, notes)
    return d, notes, problems


def _environment(d: dict[str, Any], notes: list[str]) -> None:
    """``environment.environment_variables`` (a list of "NAME=value", or one list per device
    type: ``cpu``, ``cuda``, ``rocm``) becomes ``environment_variables``: jobs here run on the
    GPU partition's nodes, so the ``cuda`` list, over the ``cpu`` one. The rest of
    ``environment`` (images, pod specs) means nothing without containers."""
    env = d.get("environment")
    if not isinstance(env, dict) or "environment_variables" not in env:
        return
    v = env["environment_variables"]
    if isinstance(v, dict) and set(v) <= {"cpu", "cuda", "gpu", "rocm"}:
        merged: list[Any] = []
        for kind in ("cpu", "cuda", "gpu"):
            if isinstance(v.get(kind), list):
                merged.extend(v[kind])
        v = merged
    if "environment_variables" not in d:  # a key of our own wins
        d["environment_variables"] = v
    d.pop("environment")
    notes.append("environment.environment_variables: set in every job (environment_variables)")
    for k in sorted(k for k in env if k != "environment_variables"):
        notes.append(f"environment.{k}: Determined setting, ignored: {IGNORED['environment']}")


def _null_constants(hp: dict[str, Any]) -> dict[str, Any]:
    """Determined takes ``name:`` with no value as the constant null (its DeepSpeed examples
    leave ``wandb_group:`` empty); so does this, spelt out for the space parser."""
    out: dict[str, Any] = {}
    for k, v in hp.items():
        if v is None:
            out[k] = {"type": "const", "val": None}
        elif isinstance(v, dict) and "type" not in v:
            out[k] = _null_constants(v)
        else:
            out[k] = v
    return out


def _ignore(d: dict[str, Any], key: str, full: str, notes: list[str]) -> None:
    d.pop(key, None)
    why = IGNORED.get(full) or "not used here"
    notes.append(f"{full}: Determined setting, ignored: {why}")


def _searcher(d: dict[str, Any], notes: list[str], problems: list[str]) -> None:
    s = d.get("searcher")
    if not isinstance(s, dict):
        return
    for key in list(s):
        if f"searcher.{key}" in IGNORED:
            _ignore(s, key, f"searcher.{key}", notes)
    name = s.get("name")
    if isinstance(name, str) and name in UNSUPPORTED_SEARCHERS:
        problems.append(f"searcher.name: '{name}' is not available ({UNSUPPORTED_SEARCHERS[name]}); "
                        f"asha_hpc runs {SUPPORTED}")
        # the rest of the section is that searcher's: one line says it all
        d["searcher"] = {"name": None, "metric": "-", "max_length": 1, "max_trials": 1}
        return
    # time_metric next to max_length is the resolved form (experiment.yaml): nothing to do
    has_time = "max_time" in s or ("time_metric" in s and "max_length" not in s)
    if has_time:
        tm, mt = s.get("time_metric"), s.pop("max_time", None)
        if "max_length" in s:
            problems.append("searcher.max_time: give either max_length or time_metric + max_time, "
                            "not both")
        elif tm is None or mt is None:
            missing = "time_metric" if tm is None else "max_time"
            problems.append(f"searcher.{missing}: missing: Determined 0.38 gives time_metric "
                            f"(e.g. batches) and max_time (the length in it) together")
        elif not isinstance(tm, str) or not tm:
            problems.append(f"searcher.time_metric: must be the name of a metric, got {tm!r}")
        else:
            s["max_length"] = {tm: mt} if tm in UNITS else mt
            notes.append(f"searcher.time_metric/max_time: max_length {mt} {tm} (the script reports "
                         f"its progress as validation metric '{tm}')")
            if s.get("name") in ("adaptive_asha", "async_halving") and "asha_rule" not in s:
                notes.append("searcher.asha_rule: paper (the ASHA paper's promotions); Determined "
                             "0.38 stops trials instead: asha_rule: determined_0.38 makes its "
                             "decisions")
    elif "max_length" not in s and name in TIMELESS:
        s["max_length"] = 1
        s["until_exit"] = True
        notes.append("searcher.max_length: not given (Determined 0.38): each trial runs once, "
                     "until its script ends")


def _resources(d: dict[str, Any], notes: list[str]) -> None:
    r = d.get("resources")
    if not isinstance(r, dict):
        return
    d.pop("resources")
    slots = r.get("slots_per_trial")
    cpu_only = slots == 0 and not isinstance(slots, bool)  # never in a resolved config
    if set(r) == {"slots_per_trial"} and isinstance(d.get("slurm"), dict) \
            and "gpus_per_node" in d["slurm"] and not cpu_only:  # our resolved form: as it is
        d["resources"] = r
        return
    for key in r:
        full = f"resources.{key}"
        if key != "slots_per_trial":
            notes.append(f"{full}: Determined setting, ignored: {IGNORED.get(full, 'not used here')}")
    if cpu_only:
        _cpu_only(d, notes)
        return
    if not isinstance(slots, int) or isinstance(slots, bool) or slots < 1:
        if "slots_per_trial" in r:
            notes.append(f"resources.slots_per_trial: {slots!r} is not a count; ignored")
        return
    d["resources"] = {"slots_per_trial": slots}  # the Core API shim's ClusterInfo.slot_ids
    slurm = d.setdefault("slurm", {}) if isinstance(d.get("slurm", {}), dict) else None
    if slurm is not None and "gpus_per_node" not in slurm:
        slurm["gpus_per_node"] = slots
    local = d.setdefault("local", {}) if isinstance(d.get("local", {}), dict) else None
    where = f"slurm.gpus_per_node {slurm.get('gpus_per_node') if slurm is not None else slots}"
    if local is not None and "gpus_per_trial" not in local:
        from ..config import detect_gpus

        gpus = local.get("gpus")
        have = len(gpus) if isinstance(gpus, list) else gpus if isinstance(gpus, int) else len(detect_gpus())
        if have >= slots:
            local["gpus_per_trial"] = slots
            where += f", local.gpus_per_trial {slots}"
        else:
            where += f"; local backend: this machine has {have} GPU(s), so trials run on CPU"
    notes.append(f"resources.slots_per_trial: {slots} GPUs per trial ({where}); the entrypoint "
                 f"starts its ranks itself, as on Determined")


def _cpu_only(d: dict[str, Any], notes: list[str]) -> None:
    """``slots_per_trial: 0`` (Determined: a CPU-only trial) -> no GPU per trial on either
    backend, unless the user's own ``slurm.gpus_per_node`` / ``local.gpus_per_trial`` says
    otherwise. No ``resources`` is kept: the resolved config counts slots from 1, and the Core
    API shim reads the 0 back from ``slurm.gpus_per_node: 0``."""
    slurm = d.setdefault("slurm", {}) if isinstance(d.get("slurm", {}), dict) else None
    local = d.setdefault("local", {}) if isinstance(d.get("local", {}), dict) else None
    if slurm is not None:
        slurm.setdefault("gpus_per_node", 0)
    if local is not None:
        local.setdefault("gpus_per_trial", 0)
    shown = [f"{name} {sec[key]}" for name, sec, key in (("slurm.gpus_per_node", slurm, "gpus_per_node"),
                                                        ("local.gpus_per_trial", local, "gpus_per_trial"))
             if sec is not None]
    notes.append(f"resources.slots_per_trial: 0: CPU-only trials ({', '.join(shown)})")


def _launcher(d: dict[str, Any], notes: list[str], problems: list[str]) -> None:
    """``python3 -m determined.launch.torch_distributed [OVERRIDES --] CMD`` becomes torchrun
    (``python3 -m torch.distributed.run --standalone --nproc_per_node N``, N the slots per
    trial) running CMD; ``determined.launch.tensorflow`` is dropped (CMD runs alone); other
    Determined launchers are refused; ``--trial Class`` (any launcher) makes the class the
    entrypoint, which ``plan`` and ``run`` name as a Trial class."""
    ep = d.get("entrypoint")
    if isinstance(ep, str) and " " in ep.strip():
        try:
            toks = shlex.split(ep)
        except ValueError:  # unclosed quotation: the entrypoint check names it
            return
    elif isinstance(ep, list) and all(isinstance(x, (str, int, float)) for x in ep):
        toks = [str(x) for x in ep]
    else:
        return
    at = next((i for i in range(len(toks) - 1)
               if toks[i] == "-m" and toks[i + 1].startswith("determined.launch.")), None)
    if at is None:
        return
    python, launcher, rest = toks[:at], toks[at + 1], toks[at + 2:]
    overrides: list[str] = []
    if "--trial" in rest[:-1]:  # Determined's Trial-class form: the class is the entrypoint
        d["entrypoint"] = rest[rest.index("--trial") + 1]  # plan and run name it (one line)
        return
    if "--" in rest:
        cut = rest.index("--")
        overrides, rest = [o for o in rest[:cut] if o != "--trust"], rest[cut + 1:]
    if launcher == "determined.launch.torch_distributed":
        slots = (d.get("resources") or {}).get("slots_per_trial", 1)
        no_python = ["--no-python"] if rest and not rest[0].endswith(".py") else []
        new = python + ["-m", "torch.distributed.run", "--standalone",
                        f"--nproc_per_node={slots}", *no_python, *overrides, *rest]
    elif launcher == "determined.launch.tensorflow":
        new = rest
    else:  # no job could run it: refused before any starts
        problems.append(f"entrypoint: {launcher} is Determined's launcher and is not available "
                        f"here: start the ranks in the command yourself (torchrun, `deepspeed "
                        f"--num_gpus N`, srun) or use slurm.tasks_per_node with a function "
                        f"entrypoint")
        return
    d["entrypoint"] = new
    notes.append(f"entrypoint: {launcher} -> {shlex.join(new)}")


# the command a PyTorchTrial entrypoint becomes; named here, not imported: the master and plan
# run where torch may be missing (its package, det.pytorch, imports torch)
TRIAL_CLASS_RUNNER = "asha_hpc.compat.determined.pytorch.trial_class"
TRIAL_CLASS_PERIODS = {"min_validation_period": "--validation-period",
                       "min_checkpoint_period": "--checkpoint-period"}


def _count(v: Any) -> bool:
    """A positive whole number as YAML gives one (not a bool, which Python counts as an int)."""
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


def _trial_class_settings(d: dict[str, Any]) -> list[str]:
    """A PyTorchTrial's settings in the config, taken out of it as the Trainer's arguments:
    ``min_validation_period`` / ``min_checkpoint_period`` ({batches|epochs|records: N}),
    ``scheduling_unit`` (batches between training-metric reports) and
    ``optimizations.aggregation_frequency``. A value that is not a positive count in one of
    those units is dropped (the Trainer's default stands)."""
    args: list[str] = []
    gbs = (d.get("hyperparameters") or {}).get("global_batch_size")
    for key, flag in TRIAL_CLASS_PERIODS.items():
        period = d.pop(key, None)
        if not (isinstance(period, dict) and len(period) == 1):
            continue
        (unit, n), = period.items()
        if unit == "records" and _count(gbs) and _count(n):
            unit, n = "batches", max(n // gbs, 1)
        if unit in ("batches", "epochs") and _count(n):
            args += [flag, f"{unit}={n}"]
    unit_n = d.pop("scheduling_unit", None)
    if _count(unit_n):
        args += ["--reporting-period", f"batches={unit_n}"]
    opt = d.get("optimizations")
    if isinstance(opt, dict) and "aggregation_frequency" in opt:
        frequency = opt.pop("aggregation_frequency")
        if _count(frequency):
            args += ["--aggregation-frequency", str(frequency)]
        if not opt:
            del d["optimizations"]
    return args


def _run_trial_class(d: dict[str, Any], spec: str, args: list[str], notes: list[str]) -> None:
    """A PyTorchTrial class as entrypoint becomes the command that trains it with det.pytorch's
    Trainer (under torchrun with one rank per slot when a trial has several)."""
    slots = (d.get("resources") or {}).get("slots_per_trial", 1)
    ranks = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={slots}"] \
        if isinstance(slots, int) and slots > 1 else []
    d["entrypoint"] = ["python3", *ranks, "-m", TRIAL_CLASS_RUNNER, spec, *args]
    notes.append(f"entrypoint: {spec} is a Determined PyTorchTrial: det.pytorch's Trainer "
                 f"trains it to each rung ({shlex.join(d['entrypoint'])}); its `import "
                 f"determined` lines stay as they are")


def pytorch_trial_spec(entrypoint: Any, context_dir: str) -> str | None:
    """The class an entrypoint names (``module:Name``, a bare ``Name`` of the folder's
    ``__init__.py``, or Determined's launcher form ``... --trial module:Name``) when its source
    shows it subclasses ``PyTorchTrial`` (directly, or through classes of the same file);
    None otherwise. Nothing is imported."""
    import ast

    if isinstance(entrypoint, str) and "--trial" in entrypoint.split():
        toks = entrypoint.split()
        if toks.index("--trial") + 1 < len(toks):
            entrypoint = toks[toks.index("--trial") + 1]
    if not isinstance(entrypoint, str) or not entrypoint.strip() or " " in entrypoint.strip():
        return None
    found = _class_def(entrypoint.strip() if ":" in entrypoint else [entrypoint.strip()],
                       context_dir)
    if found is None:
        return None
    cls, tree = found
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}

    def is_pytorch(c: ast.ClassDef, seen: set[str]) -> bool:
        for base in c.bases:
            text = ast.unparse(base)
            if text.split(".")[-1] == "PyTorchTrial":
                return True
            if text in classes and text not in seen and is_pytorch(classes[text], seen | {text}):
                return True
        return False

    return entrypoint.strip() if is_pytorch(cls, {cls.name}) else None


def checkpoint_folder(ckpt: dict[str, Any], config_dir: str) -> str | None:
    """The folder a ``checkpoint_storage`` section puts checkpoints in, or None (the
    experiment folder): ``host_path``/``storage_path`` (storage_path alone when absolute), or
    ``container_path`` for ``type: directory``; relative paths from the config's folder."""
    host = ckpt.get("host_path") or ckpt.get("container_path")
    sub = ckpt.get("storage_path")
    if not host and not sub:
        return None
    base = Path(str(host)).expanduser() if host else Path(".")
    path = base / str(sub) if sub else base
    if not path.is_absolute():
        path = Path(config_dir) / path
    return str(path.resolve())


def _checkpoint_storage(d: dict[str, Any], config_dir: str, notes: list[str]) -> None:
    c = d.get("checkpoint_storage")
    searcher = d.get("searcher")
    single = isinstance(searcher, dict) and searcher.get("name") == "single"
    if c is None and notes and not single:
        # a Determined config (it had keys to map) that keeps the defaults, of several trials
        notes.append("checkpoint_storage: not given: the best 3 trials keep their checkpoints, "
                     "and a trial that can no longer be promoted loses its own; Determined's "
                     "default keeps every trial's newest (checkpoint_storage: "
                     "{save_trial_latest: 1})")
    if not isinstance(c, dict):
        return
    for key in list(c):
        full = f"checkpoint_storage.{key}"
        if full in IGNORED:
            _ignore(c, key, full, notes)
    if "save_trial_best" in c:  # a trial keeps one checkpoint here: its newest
        best = c.pop("save_trial_best")
        if isinstance(best, int) and not isinstance(best, bool) and best > 0:
            c["save_trial_latest"] = c.get("save_trial_latest") or 1
            notes.append("checkpoint_storage.save_trial_best: each trial keeps its newest "
                         "checkpoint, the one at its longest training (one checkpoint per trial "
                         "here)")
        else:
            notes.append("checkpoint_storage.save_trial_best: one checkpoint per trial here, its "
                         "newest, kept per save_trial_latest")
    kind = c.pop("type", "shared_fs")
    if kind not in ("shared_fs", "directory"):
        for key in list(c):
            if key not in ("save_experiment_best", "save_trial_latest", "host_path",
                           "storage_path", "folder"):
                c.pop(key)
        notes.append(f"checkpoint_storage.type: {kind} is Determined's object store; checkpoints "
                     f"stay on the shared filesystem (in the experiment folder unless host_path "
                     f"is given)")
    if "folder" in c:  # asha_hpc's own resolved form (experiment.yaml)
        return
    folder = checkpoint_folder(c, config_dir)
    for key in ("host_path", "storage_path", "container_path"):
        c.pop(key, None)
    if folder:
        c["folder"] = folder
        notes.append(f"checkpoint_storage: trials' checkpoints live in {folder}/<experiment>/ "
                     f"(the experiment folder links to it)")


def _slurm(d: dict[str, Any], notes: list[str], problems: list[str]) -> None:
    s = d.get("slurm")
    if not isinstance(s, dict):
        return
    if "slots_per_node" in s:
        v = s.pop("slots_per_node")
        s.setdefault("gpus_per_node", v)
        notes.append(f"slurm.slots_per_node: slurm.gpus_per_node {s['gpus_per_node']}")
    if "gpu_type" in s:
        _ignore(s, "gpu_type", "slurm.gpu_type", notes)
    if "sbatch_args" in s:
        from ..config import sbatch_owned

        args = s.pop("sbatch_args")
        extra = s.setdefault("additional_parameters", {})
        bad = []
        for a in args if isinstance(args, list) else [args]:
            try:
                toks = shlex.split(str(a))
            except ValueError:  # an unclosed quotation: the whole argument is bad
                bad.append(str(a))
                continue
            for tok in toks:
                k, eq, v = tok.lstrip("-").partition("=")
                if not tok.startswith("--") or not k:
                    bad.append(tok)
                    continue
                owned = sbatch_owned(k)
                if owned is not None:  # named as the user wrote it, not as it became
                    problems.append(f"slurm.sbatch_args: {tok}: asha_hpc sets sbatch's --{k} "
                                    f"for every trial job; {owned}")
                    continue
                extra.setdefault(k.replace("-", "_"), v if eq else True)
        shown = ", ".join(f"{k}: {v}" for k, v in extra.items())
        notes.append(f"slurm.sbatch_args: slurm.additional_parameters {{{shown}}}"
                     + (f"; could not read {' '.join(bad)} (give them as --key=value)" if bad else ""))


def _class_def(entrypoint: Any, context_dir: str) -> tuple[Any, Any] | None:
    """(the class definition, the module's syntax tree) an entrypoint names: ``module:Name`` /
    ``path.py:Name`` (``Name`` may be ``Outer.Inner``: the outer class), or ``[Name]``, a bare
    name in the context directory's ``__init__.py``; None when its source shows no such class."""
    import ast

    if isinstance(entrypoint, list):
        if len(entrypoint) != 1 or not entrypoint[0].replace(".", "_").isidentifier():
            return None
        mod, name = "", entrypoint[0]
        path = Path("__init__.py")
    elif isinstance(entrypoint, str):
        mod, _, name = entrypoint.rpartition(":")
        if mod.endswith(".py") or "/" in mod:
            path = Path(mod)
        else:
            path = Path(*mod.split("."))
            path = path / "__init__.py" if (Path(context_dir) / path).is_dir() else path.with_suffix(".py")
    else:
        return None
    if not path.is_absolute():
        path = Path(context_dir) / path
    try:
        tree = ast.parse(path.read_text())
    except (OSError, SyntaxError, ValueError):
        return None
    top = name.split(".")[0]
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == top:
            return node, tree
    return None


def trial_class_problem(entrypoint: Any, context_dir: str) -> str | None:
    """Why an entrypoint names a Determined Trial class that cannot run here (read from the
    source, nothing imported), or None: one line pointing to the Core API path. A
    ``PyTorchTrial`` runs (``pytorch_trial_spec``: its entrypoint became a command)."""
    if _class_def(entrypoint, context_dir) is None:
        return None
    shown = entrypoint[0] if isinstance(entrypoint, list) else str(entrypoint)
    return trial_class_message(shown)


def determined_import_problem(entrypoint: Any, context_dir: str) -> str | None:
    """Why a command's Python script cannot run here: it imports Determined's own package,
    installed or not (the shim is ``asha_hpc.compat.determined``; Determined's own needs its
    cluster); None otherwise. Only the script the command names is read (its source, nothing
    imported)."""
    import ast
    import importlib.util

    if not isinstance(entrypoint, list):
        return None
    scripts = [Path(context_dir) / t for t in entrypoint if str(t).endswith(".py")]
    for script in scripts[:1]:
        try:
            tree = ast.parse(script.read_text())
        except (OSError, SyntaxError, ValueError):
            return None
        uses = any(isinstance(n, ast.Import) and any(a.name.split(".")[0] == "determined"
                                                      for a in n.names)
                   or isinstance(n, ast.ImportFrom) and n.level == 0
                   and (n.module or "").split(".")[0] == "determined"
                   for n in ast.walk(tree))
        if not uses:
            continue
        why = ("which is not installed here" if importlib.util.find_spec("determined") is None
               else "Determined's own package: off a Determined cluster it has no master, and "
                    "its scripts stop at det.get_cluster_info() (\"only runs on-cluster\")")
        return (f"entrypoint: {script.name} imports determined, {why}: change `import "
                f"determined as det` to `from asha_hpc.compat import determined as det` (the "
                f"Core API shim; README: Moving from Determined)")
    return None


def trial_class_message(entrypoint: str) -> str:
    return (f"entrypoint: {entrypoint} is a Determined Trial class that is not a "
            f"PyTorchTrial; of the Trial classes only PyTorchTrial runs here: call your "
            f"training loop from a script that uses the Core API shim (`from asha_hpc.compat "
            f"import determined as det`, README: Moving from Determined) and set entrypoint: "
            f"python3 that_script.py")


def place_trials(exp_root: Path, folder: Path) -> Path:
    """Put the experiment's trial folders (checkpoints, run logs) in ``folder/<experiment>``
    and link ``<exp>/trials`` to it: checkpoints on scratch, the experiment in home. Called
    once, when the experiment is created (its trials folder is still empty)."""
    from ..errors import AshaError
    from ..protocol.expdir import TRIALS

    target = folder / exp_root.name / TRIALS
    link = exp_root / TRIALS
    try:
        target.mkdir(parents=True, exist_ok=True, mode=0o700)
        if any(target.iterdir()):
            raise AshaError(f"checkpoint_storage: {target} already holds trials of another "
                            f"experiment; choose another experiment folder or storage path")
        if link.is_dir() and not link.is_symlink():
            link.rmdir()
        link.symlink_to(target, target_is_directory=True)
    except OSError as e:
        raise AshaError(f"checkpoint_storage: cannot use {target} ({e.strerror}); check "
                        f"host_path / storage_path") from None
    return target
