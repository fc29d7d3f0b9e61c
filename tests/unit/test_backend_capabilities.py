"""What each backend declares it does (Backend.capabilities), and that the master, the replayed
state and the views ask those, never a backend's name."""
from __future__ import annotations

import re
from pathlib import Path

import asha_hpc
from asha_hpc.backends import backend_class, capabilities, log_files, make_backend
from asha_hpc.backends.local import LocalBackend
from asha_hpc.backends.simulated import SimulatedBackend
from asha_hpc.backends.slurm import SlurmBackend
from asha_hpc.config import parse_config
from asha_hpc.master.state import replay
from asha_hpc.protocol.expdir import ExpDir


def cfg_for(tmp_path: Path, **top):
    raw = {"name": "caps", "entrypoint": "model:train",
           "searcher": {"name": "adaptive_asha", "metric": "loss", "max_length": 16,
                        "max_trials": 8, "max_concurrent_trials": 2},
           "hyperparameters": {"lr": {"type": "log", "minval": -4, "maxval": -1, "base": 10}}}
    raw.update(top)
    return parse_config(raw, tmp_path)


def test_local_jobs_wait_for_a_slot_here_and_take_no_time_limit(tmp_path):
    caps = capabilities(cfg_for(tmp_path, backend="local"))
    assert not caps.virtual_time and caps.jobs_run_here and not caps.queue_waits
    assert caps.result_grace_s == 3.0 and caps.time_limits is None
    assert caps.default_limit_min is None and caps.stop_warning_s == 0.0 and caps.no_pool is None
    assert not caps.jobs_on_other_nodes


def test_slurm_plans_time_limits_and_warns_signal_delay_s_before_them(tmp_path):
    cfg = cfg_for(tmp_path, backend="slurm", slurm={"timeout_min": 45, "signal_delay_s": 120})
    caps = capabilities(cfg)
    assert caps.time_limits is cfg.slurm and caps.queue_waits and not caps.jobs_run_here
    assert caps.jobs_on_other_nodes
    assert caps.default_limit_min == 45 and caps.worker_lifetime_s == 2700.0
    assert caps.stop_warning_s == 120.0 and caps.result_grace_s == 30.0 and caps.no_pool is None
    auto = capabilities(cfg_for(tmp_path, backend="slurm", slurm={"timeout_min": "auto"}))
    assert auto.default_limit_min is None and auto.no_pool and "timeout_min" in auto.no_pool
    per_rung = cfg_for(tmp_path, backend="slurm", slurm={"per_rung": [{"gpus_per_node": 1},
                                                                       {"gpus_per_node": 2}]})
    assert "per_rung" in (capabilities(per_rung).no_pool or "")
    assert SlurmBackend.rung_resources(per_rung, 1)["gpus_per_node"] == 2
    assert SimulatedBackend.rung_resources(per_rung, 0) == {"gpus_per_node": 1}
    assert LocalBackend.rung_resources(per_rung, 1) == {}  # local.gpus_per_trial decides


def test_a_simulated_cluster_plans_time_limits_only_where_the_config_asks(tmp_path):
    plain = capabilities(cfg_for(tmp_path, backend="simulated"))
    assert plain.virtual_time and plain.result_grace_s == 0.0 and plain.time_limits is None
    assert not plain.jobs_on_other_nodes  # a simulated cluster's jobs write nothing anywhere
    cfg = cfg_for(tmp_path, backend="simulated", slurm={"timeout_min": "auto"})
    assert capabilities(cfg).time_limits is cfg.slurm


def test_the_backend_made_from_a_config_declares_what_the_replayed_state_uses(tmp_path):
    for name in ("local", "simulated"):
        cfg = cfg_for(tmp_path, backend=name)
        b = make_backend(cfg, tmp_path / name)
        assert type(b) is backend_class(name) and b.name == name
        assert b.capabilities(cfg) == replay(cfg, []).caps


def test_log_files_of_each_backend_by_its_job_ids(tmp_path):
    exp = ExpDir(tmp_path)
    exp.jobs.mkdir(parents=True)
    (exp.jobs / "local-t00001-s000-a00.json").write_text('{"key": "t00001-s000-a00", "pid": 4242}')
    (exp.jobs / "4242_0_log.err").write_text("Traceback\n")
    assert log_files(exp.jobs, "local:t00001-s000-a00") == (None, exp.jobs / "4242_0_log.err")
    # a Slurm job's: in jobs/ itself, where its array task's folder (the pickles) is made only
    # once sbatch answered; in a folder of an earlier version, in that folder
    (exp.jobs / "9001_2").mkdir()
    (exp.jobs / "9001_2_0_log.out").write_text("epoch 1\n")
    (exp.jobs / "9001_2_1_log.err").write_text("rank 1\n")
    assert log_files(exp.jobs, "9001_2") == (exp.jobs / "9001_2_0_log.out",
                                             exp.jobs / "9001_2_1_log.err")
    (exp.jobs / "8000").mkdir()
    (exp.jobs / "8000" / "8000_0_log.out").write_text("epoch 1\n")
    assert log_files(exp.jobs, "8000") == (exp.jobs / "8000" / "8000_0_log.out", None)
    assert SimulatedBackend.log_files(exp.jobs, "sim:t00001-s000-a00") is None
    assert log_files(exp.jobs, "sim:t00001-s000-a00") == (None, None)
    assert log_files(exp.jobs, "../../etc") == (None, None)  # never outside jobs/


def test_only_the_backends_and_the_config_name_a_backend():
    """The master, the state and the views ask capabilities; naming a backend stays in the
    backends' factory, the config, and the commands that are about one (simulate, submit)."""
    root = Path(asha_hpc.__file__).parent
    allowed = {"config.py", "simulate.py", "submit.py"}
    asks = re.compile(r"""(\bbackend\.name\s*[!=]=|cfg\.backend\s*[!=]=|\bcfg\.slurm\.)""")
    found = []
    for p in sorted(root.rglob("*.py")):
        rel = p.relative_to(root)
        if rel.parts[0] == "backends" or str(rel) in allowed:
            continue
        for n, line in enumerate(p.read_text().splitlines(), 1):
            if asks.search(line):
                found.append(f"{rel}:{n}: {line.strip()}")
    assert found == []
