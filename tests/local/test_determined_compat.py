"""Determined users move over unchanged: their configs pass ``plan`` as they are, every
Determined key is mapped or named as ignored (one line each, the same from ``plan``,
``plan --json`` and ``run``), unsupported searchers and Trial classes get one clear line."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from asha_hpc.cli import main
from asha_hpc.compat.determined_config import IGNORED, translate
from asha_hpc.config import load_config, parse_config
from asha_hpc.errors import ConfigError

CONFIGS = Path(__file__).parent.parent / "determined_configs"
GOOD = sorted(CONFIGS.glob("*.yaml")) + sorted(p for p in CONFIGS.glob("*/*.yaml") if p.parent.name != "bad")


def _plan(capsys, path: Path, *extra: str):
    rc = main(["plan", str(path), *extra])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.stem)
def test_every_determined_config_plans_unchanged(capsys, path):
    rc, out, err = _plan(capsys, path)
    assert rc == 0, err
    cfg = load_config(path)
    if cfg.searcher.until_exit:
        assert "length: none given; each trial runs once, until its script ends" in out
    else:
        assert "rung targets" in out
    rc, out_json, err = _plan(capsys, path, "--json")
    assert rc == 0, err
    p = json.loads(out_json)
    assert p["brackets"] and p["total_trials"] >= 1
    # the same warnings, one per line, in the text and the JSON
    text_warnings = [line[len("warning: "):] for line in out.splitlines() if line.startswith("warning: ")]
    assert text_warnings == p["warnings"]


def _keys(d, prefix=""):
    for k, v in d.items():
        yield f"{prefix}{k}"
        if (prefix == "" and k in ("searcher", "resources", "checkpoint_storage", "slurm",
                                   "environment") and isinstance(v, dict)):
            yield from _keys(v, f"{k}.")


def test_every_key_is_mapped_or_reported_once(capsys):
    """every_key_027.yaml holds every key of Determined's experiment-config reference a user
    of these searchers writes; each one we do not take as it is gets exactly one line."""
    path = CONFIGS / "every_key_027.yaml"
    raw = yaml.safe_load(path.read_text())
    rc, out_json, err = _plan(capsys, path, "--json")
    assert rc == 0, err
    warnings = json.loads(out_json)["warnings"]
    native = {"name", "description", "entrypoint", "hyperparameters", "searcher", "max_restarts",
              "reproducibility", "checkpoint_storage", "resources", "slurm", "environment",
              "checkpoint_storage.type", "checkpoint_storage.save_experiment_best",
              "checkpoint_storage.save_trial_latest", "data",
              "checkpoint_storage.host_path", "checkpoint_storage.storage_path",
              *(f"searcher.{k}" for k in ("name", "metric", "smaller_is_better", "max_length",
                                          "max_trials", "max_concurrent_trials", "mode",
                                          "divisor", "max_rungs"))}
    for key in _keys(raw):
        if key in native:
            continue
        lines = [w for w in warnings if w.startswith(f"{key}:")]
        assert len(lines) == 1, (key, lines)
    # the mapped ones say what they became
    joined = "\n".join(warnings)
    assert "slurm.sbatch_args: slurm.additional_parameters {mem: 64G, time: 04:00:00}" in joined
    assert ("checkpoint_storage: trials' checkpoints live in "
            "/tmp/asha-det-compat-scratch/checkpoints/") in joined
    cfg = load_config(path)
    assert cfg.slurm.gpus_per_node == 4  # slurm.slots_per_node
    # sbatch's --time is each trial job's own (timeout_min); the rest passes to sbatch
    assert cfg.slurm.additional_parameters == {"mem": "64G"} and cfg.slurm.timeout_min == 240
    assert "slurm.additional_parameters.time: slurm.timeout_min 240" in joined
    assert cfg.checkpoint_folder == "/tmp/asha-det-compat-scratch/checkpoints"
    assert cfg.environment_variables == {"NCCL_DEBUG": "INFO"}  # set in every job
    assert cfg.save_experiment_best == 2 and cfg.save_trial_latest == 1
    assert cfg.data == raw["data"] and cfg.to_dict()["data"] == raw["data"]  # user_data
    # Determined's torch launcher becomes torchrun with the trial's slots
    assert cfg.entrypoint == ["python3", "-m", "torch.distributed.run", "--standalone",
                              "--nproc_per_node=2", "--no-python", "python3", "train.py",
                              "--epochs", "1"]


def test_run_prints_the_same_warnings(tmp_path, capsys):
    src = CONFIGS / "every_key_027.yaml"
    _, out_json, _ = _plan(capsys, src, "--json")
    expected = json.loads(out_json)["warnings"]
    cfg = load_config(src)
    assert cfg.warnings == expected


@pytest.mark.parametrize("variables,want", [
    (["NCCL_DEBUG=INFO", "HF_HOME=/scratch/hf", "EMPTY="],
     {"NCCL_DEBUG": "INFO", "HF_HOME": "/scratch/hf", "EMPTY": ""}),
    ({"cpu": ["OMP_NUM_THREADS=4", "A=cpu"], "cuda": ["A=cuda", "NCCL_IB_DISABLE=1"]},
     {"OMP_NUM_THREADS": "4", "A": "cuda", "NCCL_IB_DISABLE": "1"}),  # the GPU nodes' list wins
])
def test_environment_variables_are_set_in_every_job(variables, want):
    raw = {"entrypoint": "python3 t.py", "searcher": {"name": "single", "metric": "x",
                                                      "max_length": 3},
           "environment": {"image": "determinedai/pytorch-ngc:0.38.0",
                           "environment_variables": variables}}
    cfg = parse_config(raw, "/tmp")
    assert cfg.environment_variables == want
    assert [w.split(":")[0] for w in cfg.warnings if w.startswith("environment")] == [
        "environment.environment_variables", "environment.image"]
    again = parse_config(cfg.to_dict(), cfg.config_dir)  # what resume reads back
    assert again.environment_variables == want


def test_time_metric_and_max_time():
    cfg = load_config(CONFIGS / "core_api_038_adaptive.yaml")
    s = cfg.searcher
    assert (s.max_length, s.length_unit, s.time_metric) == (80, "batches", "batches")
    cfg = load_config(CONFIGS / "custom_time_metric_038.yaml")
    assert (cfg.searcher.max_length, cfg.searcher.time_metric) == (1000, "optimizer_steps")
    from asha_hpc.plan import plan, render_plan
    text = render_plan(cfg.searcher, cfg.space(), plan(cfg.searcher, cfg.space()))
    assert "max_length 1,000 optimizer_steps" in text  # the user's own time metric
    # resolved config round-trips (what resume reads back)
    again = parse_config(cfg.to_dict(), cfg.config_dir)
    assert again.searcher == cfg.searcher and not again.warnings


def test_no_length_means_until_the_script_ends():
    cfg = load_config(CONFIGS / "core_api_038_single.yaml")
    assert cfg.searcher.until_exit and cfg.searcher.max_length == 1
    assert parse_config(cfg.to_dict(), cfg.config_dir).searcher.until_exit
    with pytest.raises(ConfigError, match="searcher.max_length: missing"):
        parse_config({"entrypoint": "a:b", "searcher": {"name": "adaptive_asha", "metric": "x",
                                                        "max_trials": 4}}, "/tmp")


@pytest.mark.parametrize("name", ["pbt", "custom"])
def test_unsupported_searchers_one_line(capsys, name):
    rc, _, err = _plan(capsys, CONFIGS / "bad" / f"{name}.yaml")
    assert rc != 0
    assert err.count("\n") == 1
    assert f"searcher.name: '{name}' is not available" in err
    assert "adaptive_asha, async_halving, random, grid, single" in err


def test_half_a_time_length_is_an_error():
    raw = {"entrypoint": "a:b", "searcher": {"name": "adaptive_asha", "metric": "x",
                                             "max_trials": 4, "max_time": 10}}
    with pytest.raises(ConfigError, match="searcher.time_metric: missing"):
        parse_config(raw, "/tmp")
    raw["searcher"].update(time_metric="batches", max_length=10)
    with pytest.raises(ConfigError, match="either max_length or time_metric"):
        parse_config(raw, "/tmp")


def test_trial_class_plans_with_a_warning_and_run_refuses(tmp_path, capsys):
    path = CONFIGS / "trial_class_026.yaml"
    rc, out, err = _plan(capsys, path)
    assert rc == 0
    assert "model_def:DigitsTrial is a Determined Trial class" in out
    assert "from asha_hpc.compat import determined as det" in out
    rc = main(["run", str(path), "--exp-dir", str(tmp_path / "exp")])
    _, err = capsys.readouterr()
    assert rc != 0 and "is a Determined Trial class" in err
    assert not (tmp_path / "exp").exists()


@pytest.mark.parametrize("launcher", ["torch_distributed", "horovod --autohorovod", "deepspeed"])
def test_a_trial_class_behind_a_launcher_is_told_and_other_launchers_refused(tmp_path, capsys,
                                                                             launcher):
    """Determined's docs start a distributed Trial class as ``python3 -m
    determined.launch.torch_distributed --trial model_def:MyTrial``: the class is named, not run
    under torchrun; a launcher asha_hpc cannot run is refused before any job, not at each job."""
    raw = yaml.safe_load((CONFIGS / "trial_class_026.yaml").read_text())
    raw["resources"] = {"slots_per_trial": 2}
    raw["entrypoint"] = f"python3 -m determined.launch.{launcher} --trial model_def:DigitsTrial"
    (tmp_path / "model_def.py").write_text((CONFIGS / "model_def.py").read_text())
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(raw))
    rc, out, _ = _plan(capsys, tmp_path / "c.yaml")
    assert rc == 0 and "entrypoint: model_def:DigitsTrial is a Determined Trial class" in out, out
    assert main(["run", str(tmp_path / "c.yaml"), "--exp-dir", str(tmp_path / "exp")]) != 0
    assert "model_def:DigitsTrial is a Determined Trial class" in capsys.readouterr().err
    raw["entrypoint"] = f"python3 -m determined.launch.{launcher} python3 train.py"
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(raw))
    if launcher == "torch_distributed":
        return  # becomes torchrun (test_torch_launcher_becomes_torchrun)
    with pytest.raises(ConfigError, match=f"entrypoint: determined.launch.{launcher.split()[0]} "
                                          f"is Determined's launcher and is not available here"):
        load_config(tmp_path / "c.yaml")


@pytest.mark.parametrize("installed", [False, True], ids=["not installed", "installed"])
def test_an_unchanged_core_api_script_is_told_which_import_to_change(tmp_path, capsys,
                                                                     monkeypatch, installed):
    """The script as it ran on Determined (``import determined as det``): `run` says which line
    to change before any job, where every job would fail with ModuleNotFoundError, or, with
    Determined's own package installed (a user who kept it), stop at its "this example only
    runs on-cluster"."""
    import importlib.util

    if installed:  # Determined's package as pip would leave it (a stand-in: none is needed)
        (tmp_path / "site" / "determined").mkdir(parents=True)
        (tmp_path / "site" / "determined" / "__init__.py").write_text("")
        monkeypatch.syspath_prepend(str(tmp_path / "site"))
    elif importlib.util.find_spec("determined") is not None:
        pytest.skip("Determined's own package is installed here")
    (tmp_path / "train.py").write_text((CONFIGS / "1_metrics.py").read_text().replace(
        "from asha_hpc.compat import determined as det", "import determined as det"))
    (tmp_path / "c.yaml").write_text((CONFIGS / "core_api_start.yaml").read_text().replace(
        "0_start.py", "train.py"))
    assert "train.py" in (tmp_path / "c.yaml").read_text()
    why = ("Determined's own package: off a Determined cluster it has no master" if installed
           else "which is not installed here")
    line = (f"entrypoint: train.py imports determined, {why}")
    change = "change `import determined as det` to `from asha_hpc.compat import determined as det`"
    rc, out, _ = _plan(capsys, tmp_path / "c.yaml")  # plan says it too, before any run
    assert rc == 0 and line in out and change in out
    assert main(["run", str(tmp_path / "c.yaml"), "--exp-dir", str(tmp_path / "exp")]) == 2
    err = capsys.readouterr().err
    assert line in err and change in err
    assert not (tmp_path / "exp").exists()


def test_a_bare_pytorch_trial_class_name_runs_through_the_trainer(tmp_path, capsys):
    """Determined's bare ``MnistTrial`` form (a PyTorchTrial in the folder's __init__.py)
    becomes the command that trains it; a Trial class of another kind is still told."""
    path = CONFIGS / "trial_class_init" / "const.yaml"
    rc, out, _ = _plan(capsys, path)
    assert rc == 0 and "entrypoint: MnistTrial is a Determined PyTorchTrial" in out, out
    assert load_config(path).entrypoint == [
        "python3", "-m", "asha_hpc.compat.determined.pytorch.trial_class", "MnistTrial"]
    # the master and plan run where torch may be missing (a login node): none is imported
    probe = subprocess.run([sys.executable, "-c", (
        "import sys; from asha_hpc.cli import main; main(['plan', sys.argv[1]]); "
        "assert 'torch' not in sys.modules, 'plan imported torch'"), str(path)],
        capture_output=True, text=True, timeout=120)
    assert probe.returncode == 0, probe.stderr
    (tmp_path / "__init__.py").write_text(
        "from determined.keras import TFKerasTrial\n\n\nclass MnistTrial(TFKerasTrial):\n"
        "    pass\n")
    (tmp_path / "const.yaml").write_text(path.read_text())
    rc, out, _ = _plan(capsys, tmp_path / "const.yaml")
    assert rc == 0 and "entrypoint: MnistTrial is a Determined Trial class that is not a " \
        "PyTorchTrial" in out
    rc = main(["run", str(tmp_path / "const.yaml"), "--exp-dir", str(tmp_path / "exp")])
    assert rc != 0 and "MnistTrial is a Determined Trial class" in capsys.readouterr().err


def test_trial_class_fails_at_the_job_when_not_detectable(tmp_path):
    """A class plan cannot see in the source (made by a factory) fails when the job
    resolves it, with the same line."""
    from asha_hpc.errors import AshaError
    from asha_hpc.job.entrypoint import resolve_entrypoint

    (tmp_path / "made.py").write_text("Trial = type('Trial', (), {})\n")
    with pytest.raises(AshaError, match="is a Determined Trial class"):
        resolve_entrypoint("made:Trial", str(tmp_path))


def test_checkpoint_storage_places_trials(tmp_path, capsys):
    """host_path/storage_path: the trials' checkpoints live there; the experiment folder links."""
    (tmp_path / "train.py").write_text(
        "import json, os\n"
        "open(os.path.join(os.environ['ASHA_CHECKPOINT_DIR'], 'w'), 'w').write('1')\n"
        "open(os.environ['ASHA_REPORT_FILE'], 'a').write(json.dumps({'metrics': {'loss': 1.0}}) + '\\n')\n")
    cfg = {"name": "ckpt", "entrypoint": "python3 train.py",
           "searcher": {"name": "single", "metric": "loss", "max_length": {"batches": 2}},
           "checkpoint_storage": {"type": "shared_fs", "host_path": str(tmp_path / "scratch"),
                                  "storage_path": "ckpts", "save_trial_latest": 1},
           "max_restarts": 0, "poll_interval_s": 0.2}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    rc = main(["run", str(tmp_path / "c.yaml"), "--exp-dir", str(tmp_path / "home" / "exp")])
    assert rc == 0, capsys.readouterr().err
    trials = tmp_path / "home" / "exp" / "trials"
    assert trials.is_symlink()
    assert trials.resolve() == (tmp_path / "scratch" / "ckpts" / "exp" / "trials").resolve()
    ckpts = list((tmp_path / "scratch" / "ckpts" / "exp" / "trials").glob("*/checkpoints/*/w"))
    assert len(ckpts) == 1


_IGNORED_TOP = sorted(k for k in IGNORED if "." not in k)


@settings(max_examples=50, deadline=None)
@given(keys=st.lists(st.sampled_from(_IGNORED_TOP), unique=True),
       values=st.one_of(st.none(), st.integers(), st.text(max_size=5),
                        st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)))
def test_ignored_keys_any_value_one_line_each(keys, values):
    raw = {"entrypoint": "python3 t.py",
           "searcher": {"name": "single", "metric": "x", "max_length": 3}}
    raw.update({k: values for k in keys})
    cfg = parse_config(raw, "/tmp")
    for k in keys:
        assert sum(w.startswith(f"{k}: ") for w in cfg.warnings) == 1


_ANY = st.one_of(st.none(), st.booleans(), st.integers(-5, 10**6), st.floats(allow_nan=True),
                 st.text(max_size=4), st.lists(st.integers(), max_size=2),
                 st.dictionaries(st.sampled_from(["batches", "epochs", "records", "steps", ""]),
                                 st.one_of(st.integers(-5, 10**4), st.text(max_size=3),
                                           st.booleans(), st.floats(allow_nan=True)),
                                 max_size=2))


@settings(deadline=None, max_examples=60)
@given(validation=_ANY, checkpoint=_ANY, unit=_ANY, aggregation=_ANY, gbs=_ANY)
def test_a_trial_class_configs_periods_of_any_value_become_valid_trainer_arguments(
        validation, checkpoint, unit, aggregation, gbs):
    """A PyTorchTrial entrypoint's min_validation_period, min_checkpoint_period,
    scheduling_unit and optimizations.aggregation_frequency, whatever a person wrote there,
    become only well-formed Trainer arguments (the rest is dropped), never a crash."""
    raw = yaml.safe_load((CONFIGS / "mnist_pytorch_legacy" / "adaptive.yaml").read_text())
    raw.update(min_validation_period=validation, min_checkpoint_period=checkpoint,
               scheduling_unit=unit, optimizations={"aggregation_frequency": aggregation})
    raw["hyperparameters"]["global_batch_size"] = gbs
    out, notes, _ = translate(raw, str(CONFIGS / "mnist_pytorch_legacy"))
    command = out["entrypoint"]
    assert command[:4] == ["python3", "-m", "asha_hpc.compat.determined.pytorch.trial_class",
                           "model_def:MNistTrial"]
    args = command[4:]
    flags = dict(zip(args[::2], args[1::2]))
    assert len(args) == 2 * len(flags) and set(flags) <= {
        "--validation-period", "--checkpoint-period", "--reporting-period",
        "--aggregation-frequency"}
    for flag, value in flags.items():
        u, _, n = value.rpartition("=")
        assert n.isdigit() and int(n) > 0, value  # what the runner's argparse takes
        assert (u == "") == (flag == "--aggregation-frequency") and u in ("", "batches", "epochs")
    assert any("is a Determined PyTorchTrial" in n for n in notes)


@settings(max_examples=50, deadline=None)
@given(tm=st.sampled_from(["batches", "epochs", "records", "steps", "x_1"]),
       mt=st.one_of(st.integers(-3, 10**6), st.floats(allow_nan=True), st.text(max_size=3)))
def test_max_time_any_value_never_crashes(tm, mt):
    raw = {"entrypoint": "python3 t.py",
           "searcher": {"name": "adaptive_asha", "metric": "x", "max_trials": 8,
                        "time_metric": tm, "max_time": mt}}
    try:
        cfg = parse_config(raw, "/tmp")
    except ConfigError as e:
        assert all(p.startswith("searcher.max_length") for p in e.problems), e.problems
    else:
        assert cfg.searcher.max_length == mt and cfg.searcher.time_metric == tm


def test_translate_leaves_our_own_files_alone():
    ours = yaml.safe_load((Path(__file__).parents[2] / "examples/quadratic/quadratic.yaml").read_text())
    raw, notes, problems = translate(ours, "/tmp")
    assert raw == ours and notes == [] and problems == []


def test_empty_hyperparameter_is_a_null_constant():
    """Determined's DeepSpeed examples leave `wandb_group:` empty: a constant null there."""
    raw = {"entrypoint": "python3 t.py", "searcher": {"name": "single", "metric": "x", "max_length": 2},
           "hyperparameters": {"wandb_group": None, "model": {"dropout": None, "width": 3}}}
    cfg = parse_config(raw, "/tmp")
    assert cfg.space().sample(__import__("numpy").random.default_rng(0)) == {
        "wandb_group": None, "model": {"dropout": None, "width": 3}}


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.stem)
def test_resolved_config_resumes_as_it_was(path):
    """experiment.yaml (what resume reads) gives back the same config, with nothing to warn."""
    cfg = load_config(path)
    again = parse_config(cfg.to_dict(), cfg.config_dir)
    assert again.to_dict() == cfg.to_dict() and again.warnings == []


def test_unusable_checkpoint_storage_is_one_line(tmp_path, capsys):
    (tmp_path / "blocked").write_text("a file, not a folder")
    cfg = {"name": "ckpt", "entrypoint": "python3 train.py",
           "searcher": {"name": "single", "metric": "loss"},
           "checkpoint_storage": {"type": "shared_fs", "host_path": str(tmp_path / "blocked"),
                                  "storage_path": "ckpts"}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    (tmp_path / "train.py").write_text("")
    rc = main(["run", str(tmp_path / "c.yaml"), "--exp-dir", str(tmp_path / "exp")])
    err = capsys.readouterr().err
    assert rc != 0 and err.count("\n") <= 3
    assert "checkpoint_storage: cannot use" in err and "check host_path / storage_path" in err


_yaml_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8),
                          st.floats(allow_nan=False, allow_infinity=False))


@settings(max_examples=100, deadline=None)
@given(data=st.one_of(
    st.dictionaries(st.text(min_size=1, max_size=8), st.recursive(
        _yaml_scalars, lambda c: st.lists(c, max_size=3) | st.dictionaries(
            st.text(min_size=1, max_size=5), c, max_size=3), max_leaves=6), max_size=4),
    _yaml_scalars, st.lists(_yaml_scalars, max_size=2)),
    save_trial_latest=st.one_of(st.integers(-2, 3), st.text(max_size=3), st.none()))
def test_any_data_section_and_save_trial_latest_load_as_written_or_are_named(data,
                                                                             save_trial_latest):
    """``data:`` (Determined's user data) is any mapping, kept as written through the resolved
    experiment.yaml; anything else, and a save_trial_latest that is no count, is refused naming
    its field."""
    raw = {"entrypoint": "a:b", "searcher": {"name": "single", "metric": "x", "max_length": 4},
           "data": data, "checkpoint_storage": {"save_trial_latest": save_trial_latest}}
    if save_trial_latest is None:
        del raw["checkpoint_storage"]
    try:
        cfg = parse_config(raw, "/tmp")
    except ConfigError as e:
        assert all(p.startswith(("data", "checkpoint_storage.save_trial_latest"))
                   for p in e.problems), e.problems
        assert not isinstance(data, dict) or save_trial_latest is not None
        return
    assert isinstance(data, dict) or data is None
    assert cfg.data == (data or {})
    again = parse_config(yaml.safe_load(yaml.safe_dump(cfg.to_dict())), "/tmp")
    assert again.data == cfg.data and again.save_trial_latest == cfg.save_trial_latest


def test_zero_slots_per_trial_is_a_cpu_only_trial():
    """Determined's ``slots_per_trial: 0`` (CPU-only) is no GPU per trial on either backend,
    said in one line; the Core API shim reads the 0 back from the resolved config."""
    from asha_hpc.compat.determined.core import slots_per_trial

    raw = {"entrypoint": "python3 t.py", "resources": {"slots_per_trial": 0},
           "searcher": {"name": "single", "metric": "x", "max_length": 2}}
    cfg = parse_config(raw, "/tmp")
    assert (cfg.slurm.gpus_per_node, cfg.local.gpus_per_trial) == (0, 0)
    assert cfg.warnings == ["resources.slots_per_trial: 0: CPU-only trials (slurm.gpus_per_node 0, "
                            "local.gpus_per_trial 0)"]
    assert slots_per_trial(cfg.to_dict()) == 0
    again = parse_config(cfg.to_dict(), cfg.config_dir)  # resume reads the same
    assert again.to_dict() == cfg.to_dict() and again.warnings == []
    raw["slurm"] = {"gpus_per_node": 1}  # the user's own slurm key wins
    assert parse_config(raw, "/tmp").slurm.gpus_per_node == 1
    raw = {**raw, "resources": {"slots_per_trial": 1}, "slurm": {}}
    assert slots_per_trial(parse_config(raw, "/tmp").to_dict()) == 1
