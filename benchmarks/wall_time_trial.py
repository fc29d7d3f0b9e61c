"""The training side of benchmarks/wall_time.py: the digits MLP of stopping_rules.py, trained
epoch by epoch, counting every epoch it trains in a shared counter file.

- ``train(trial)``: the asha_hpc entrypoint (``wall_time_trial:train``, context directory
  ``benchmarks/``): resumes from ``trial.latest_checkpoint`` (an npz of the weights, momenta,
  epoch count and RNG state), trains each segment, saves a checkpoint, reports ``val_loss``;
- ``ray_trainable(config)``: Ray Tune's function trainable (``tune.report`` every epoch, with a
  checkpoint when ``WALL_TIME_RAY_CKPT=1``);
- ``optuna_objective(trial)``: Optuna's objective (``report`` + ``should_prune`` every epoch);
- run as a script with ``--lr ... --width ...``: a Syne Tune trial (``Reporter`` every epoch).

Every process appends to the file named by ``WALL_TIME_COUNTER``: an ``H`` line with the
hyperparameters when it starts training a trial, and one ``E`` line per epoch trained (trial key,
epoch, validation loss when computed). The benchmark counts epochs from these lines, not from
what the systems say, and replays them for the "pure training" figure.
"""
from __future__ import annotations

import os

for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import importlib.util  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
SEED = 0  # the Net's weights and shuffles depend on (seed, hyperparameters) only
MAX_LEN = int(os.environ.get("WALL_TIME_MAX_LEN", "64"))

_sq = None
_data = None
_counter = None


def sq():
    """benchmarks/stopping_rules.py (the digits task), imported by path (not edited; it is
    another benchmark)."""
    global _sq
    if _sq is None:
        mod = sys.modules.get("stopping_rules") or sys.modules.get("_wt_stopping_rules")
        if mod is None:
            spec = importlib.util.spec_from_file_location("_wt_stopping_rules",
                                                          HERE / "stopping_rules.py")
            mod = importlib.util.module_from_spec(spec)
            sys.modules["_wt_stopping_rules"] = mod
            spec.loader.exec_module(mod)  # type: ignore[union-attr]
        _sq = mod
    return _sq


def data():
    global _data
    if _data is None:
        _data = sq().Data()
    return _data


def key_of(hp: dict[str, Any]) -> str:
    return json.dumps(hp, sort_keys=True, default=str)


def _log(line: str) -> None:
    global _counter
    path = os.environ.get("WALL_TIME_COUNTER")
    if not path:
        return
    if _counter is None:
        _counter = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(_counter, (line + "\n").encode())  # one O_APPEND write: lines never interleave


def log_start(hp: dict[str, Any], tag: str = "") -> str:
    k = key_of(hp)
    _log("H\t" + k + "\t" + tag)
    return k


def log_epoch(k: str, epoch: int, loss: float | None) -> None:
    _log(f"E\t{k}\t{epoch}\t{'' if loss is None else repr(loss)}")


def new_net(hp: dict[str, Any]):
    return sq().Net(data(), hp, SEED)


# ----------------------------------------------------------------------------- checkpoints
_ARRAYS = ("W1", "b1", "W2", "b2")


def net_bytes(net) -> bytes:
    buf = io.BytesIO()
    arrs = {n: getattr(net, n) for n in _ARRAYS}
    arrs.update({f"v{i}": v for i, v in enumerate(net.v)})
    meta = json.dumps({"epochs": net.epochs, "dead": net.dead, "rng": net.r.bit_generator.state})
    np.savez(buf, meta=np.frombuffer(meta.encode(), np.uint8), **arrs)
    return buf.getvalue()


def load_net(hp: dict[str, Any], path: Path):
    net = new_net(hp)
    with np.load(path) as z:
        for n in _ARRAYS:
            setattr(net, n, z[n])
        net.v = [z[f"v{i}"] for i in range(4)]
        meta = json.loads(z["meta"].tobytes().decode())
    net.epochs, net.dead = meta["epochs"], meta["dead"]
    net.r.bit_generator.state = meta["rng"]
    return net


# ----------------------------------------------------------------------------- asha_hpc
def train(trial) -> None:
    hp = trial.hparams
    ckpt = trial.latest_checkpoint
    net = load_net(hp, ckpt / "net.npz") if ckpt is not None else new_net(hp)
    k = log_start(hp, f"asha t{trial.id}")
    for segment in trial.segments():
        while net.epochs < segment.length:
            net.epoch()
            loss = net.loss() if net.epochs == segment.length else None
            log_epoch(k, net.epochs, loss)
        with trial.save_checkpoint(length=net.epochs) as path:
            (path / "net.npz").write_bytes(net_bytes(net))
        segment.report(val_loss=net.loss())


# ----------------------------------------------------------------------------- Ray Tune
def ray_trainable(config: dict[str, Any]) -> None:
    import tempfile

    from ray import tune

    hp = dict(config)
    net = new_net(hp)
    k = log_start(hp, "ray")
    ckpt = os.environ.get("WALL_TIME_RAY_CKPT") == "1"
    for _ in range(MAX_LEN):
        net.epoch()
        loss = net.loss()
        log_epoch(k, net.epochs, loss)
        if ckpt:
            with tempfile.TemporaryDirectory() as d:
                Path(d, "net.npz").write_bytes(net_bytes(net))
                tune.report({"val_loss": loss, "epoch": net.epochs},
                            checkpoint=tune.Checkpoint.from_directory(d))
        else:
            tune.report({"val_loss": loss, "epoch": net.epochs})


# ----------------------------------------------------------------------------- Optuna
BATCHES = [32, 64, 128, 256]
ACTS = ["relu", "tanh"]


def optuna_objective(trial) -> float:
    import optuna

    hp = {"lr": trial.suggest_float("lr", 10 ** -3.5, 1.0, log=True),
          "width": trial.suggest_int("width", 16, 128),
          "batch_size": trial.suggest_categorical("batch_size", BATCHES),
          "weight_decay": trial.suggest_float("weight_decay", 1e-6, 1e-1, log=True),
          "act": trial.suggest_categorical("act", ACTS)}
    net = new_net(hp)
    k = log_start(hp, f"optuna {trial.number}")
    loss = float("nan")
    for _ in range(MAX_LEN):
        net.epoch()
        loss = net.loss()
        log_epoch(k, net.epochs, loss)
        if net.epochs < MAX_LEN:
            trial.report(loss, net.epochs)
            if trial.should_prune():
                raise optuna.TrialPruned()
    return loss


def optuna_worker(argv) -> int:
    """One Optuna worker process: load the study from the journal file and optimize."""
    import argparse

    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    ap = argparse.ArgumentParser()
    ap.add_argument("--journal", required=True)
    ap.add_argument("--study", required=True)
    ap.add_argument("--trials", type=int, required=True)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--divisor", type=int, default=4)
    a = ap.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = JournalStorage(JournalFileBackend(a.journal))
    study = optuna.load_study(
        study_name=a.study, storage=storage,
        sampler=optuna.samplers.RandomSampler(seed=a.seed),
        pruner=optuna.pruners.SuccessiveHalvingPruner(min_resource=1,
                                                      reduction_factor=a.divisor))
    study.optimize(optuna_objective, n_trials=a.trials)
    return 0


# ----------------------------------------------------------------------------- Syne Tune
def syne_main(argv) -> int:
    import argparse

    from syne_tune import Reporter

    ap = argparse.ArgumentParser()
    ap.add_argument("--lr", type=float, required=True)
    ap.add_argument("--width", type=int, required=True)
    ap.add_argument("--batch_size", type=int, required=True)
    ap.add_argument("--weight_decay", type=float, required=True)
    ap.add_argument("--act", type=str, required=True)
    ap.add_argument("--epochs", type=int, default=MAX_LEN)
    a, _ = ap.parse_known_args(argv)
    hp = {"lr": a.lr, "width": a.width, "batch_size": a.batch_size,
          "weight_decay": a.weight_decay, "act": a.act}
    report = Reporter()
    net = new_net(hp)
    k = log_start(hp, "syne")
    for _ in range(a.epochs):
        net.epoch()
        loss = net.loss()
        log_epoch(k, net.epochs, loss)
        report(epoch=net.epochs, val_loss=loss)
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--optuna-worker":
        sys.exit(optuna_worker(sys.argv[2:]))
    sys.exit(syne_main(sys.argv[1:]))
