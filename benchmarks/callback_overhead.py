"""Callback overhead: the same Lightning / Transformers script with and without asha_hpc's
callback, in one run, and what the checkpoint at each segment's end costs.

    pip install -e '.[lightning,transformers]' scikit-learn
    python benchmarks/callback_overhead.py [--reps 3] [--quick] [--only lightning|transformers]

Each framework's script is its example's (examples/lightning_digits: an MLP LightningModule on
scikit-learn's digits, counted in epochs; examples/transformers_tiny: a tiny BERT from a
BertConfig on synthetic sequences, counted in optimizer steps), trained in this process on the
CPU with one thread, three ways, interleaved ``--reps`` times after a warm-up run (medians reported):

- ``plain``: the script without asha_hpc, no checkpoints, no evaluation beyond its own
  (Lightning: validation every epoch as the script has it; Transformers: none);
- ``hand-made``: the framework's own way to get what ASHA needs at every segment end
  (Lightning: a ModelCheckpoint every K epochs, keeping all; Transformers: eval_steps and
  save_steps = K);
- ``callback``: AshaCallback on a trial whose segments end every K units (the checkpoint
  published as the trial's, the metrics reported, training going on in place).

Per variant: units (epochs or steps) per second over the whole ``fit``/``train`` call, wall
time and this process's CPU time (steadier on a shared machine: other work lengthens the wall
time, not the CPU time, though it still slows the caches), and
for the callback the time inside the checkpoint publication per segment (the framework writing
its checkpoint + asha_hpc's manifest, fsyncs and rename; for Transformers the move of the
Trainer's folder) and the checkpoint's size. Writes benchmarks/results/callback_overhead.json
(callback_overhead_quick.json with --quick).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from asha_hpc.integrations import segments as seg_mod  # noqa: E402
from asha_hpc.job.trial import Trial  # noqa: E402
from asha_hpc.protocol.expdir import ExpDir  # noqa: E402

CKPT_TIMES: list[float] = []


def _timed_checkpoint(orig: Callable) -> Callable:
    def checkpoint(self, position, save, report=None):
        t0 = time.perf_counter()
        orig(self, position, save, report)
        CKPT_TIMES.append(time.perf_counter() - t0)
    return checkpoint


seg_mod.SegmentWalk.checkpoint = _timed_checkpoint(seg_mod.SegmentWalk.checkpoint)  # type: ignore


def load(example: str):
    path = ROOT / "examples" / example / "train.py"
    spec = importlib.util.spec_from_file_location(f"bench_{example}", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def make_trial(root: Path, lengths: list[int], unit: str, metric: str, hp: dict[str, Any]) -> Trial:
    exp = ExpDir.create(root)
    key = "t00001-s000-a00"
    return Trial(trial_id=1, hparams=hp, trial_dir=exp.trial_dir(1), run_dir=exp.run_dir(1, key),
                 segments=lengths, first_segment=0, metric=metric, key=key, length_unit=unit,
                 max_length=lengths[-1])


def dir_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


# ---------------------------------------------------------------------------- Lightning
def lightning_run(variant: str, n: int, k: int, tmp: Path) -> dict[str, Any]:
    import lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint

    from asha_hpc.integrations.lightning import AshaCallback

    ex = load("lightning_digits")
    L.seed_everything(0, verbose=False)
    model = ex.LitClassifier(hidden=64, dropout=0.1, lr=1e-3)
    data = ex.DigitsDataModule(batch_size=64)
    kw: dict[str, Any] = dict(logger=False, enable_progress_bar=False, enable_model_summary=False,
                              accelerator="cpu", devices=1, num_sanity_val_steps=0)
    ckpt_s: list[float] = []
    size = None
    if variant == "plain":
        trainer = L.Trainer(max_epochs=n, enable_checkpointing=False, **kw)
        ckpt = None
    elif variant == "hand-made":
        trainer = L.Trainer(max_epochs=n, callbacks=[ModelCheckpoint(
            dirpath=tmp / "mc", every_n_epochs=k, save_top_k=-1)], **kw)
        ckpt = None
    else:
        trial = make_trial(tmp / "exp", list(range(k, n + 1, k)), "epochs", "val_loss", {})
        cb = AshaCallback(trial, monitor="val_loss")
        trainer = L.Trainer(max_epochs=cb.max_epochs, callbacks=[cb], **kw)
        ckpt = cb.ckpt_path
    CKPT_TIMES.clear()
    t0, c0 = time.perf_counter(), time.process_time()
    trainer.fit(model, datamodule=data, ckpt_path=ckpt)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    if variant == "callback":
        ckpt_s = list(CKPT_TIMES)
        assert len(trial.reports) == n // k, "a segment was not reported"
        size = dir_mb(Path(str(trial.latest_checkpoint)))
    return {"wall_s": wall, "cpu_s": cpu, "units": n, "ckpt_s": ckpt_s, "ckpt_mb": size}


# ---------------------------------------------------------------------------- Transformers
def transformers_run(variant: str, n: int, k: int, tmp: Path) -> dict[str, Any]:
    import torch
    from transformers import Trainer, TrainingArguments
    from transformers.trainer_callback import PrinterCallback

    from asha_hpc.integrations.transformers import AshaCallback

    ex = load("transformers_tiny")
    torch.manual_seed(0)
    config = ex.BertConfig(vocab_size=32, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                           intermediate_size=64, max_position_embeddings=32, num_labels=2)
    model = ex.BertForSequenceClassification(config)
    kw: dict[str, Any] = dict(output_dir=str(tmp / "out"), learning_rate=1e-3,
                              per_device_train_batch_size=32, per_device_eval_batch_size=128,
                              logging_steps=10, report_to=[], use_cpu=True, disable_tqdm=True,
                              seed=0, max_steps=n)
    callbacks: list[Any] = []
    trial = None
    if variant == "plain":
        kw.update(save_strategy="no", eval_strategy="no")
    elif variant == "hand-made":
        kw.update(save_strategy="steps", save_steps=k, eval_strategy="steps", eval_steps=k)
    else:
        trial = make_trial(tmp / "exp", list(range(k, n + 1, k)), "batches", "eval_loss", {})
        callbacks = [AshaCallback(trial, metric="eval_loss")]
        kw.update(save_strategy="no", eval_strategy="no")
    trainer = Trainer(model=model, args=TrainingArguments(**kw),
                      train_dataset=ex.CountingDataset(1024, seed=0),
                      eval_dataset=ex.CountingDataset(256, seed=1),
                      compute_metrics=ex.compute_metrics, callbacks=callbacks)
    trainer.remove_callback(PrinterCallback)  # its log lines would mix with the table
    CKPT_TIMES.clear()
    t0, c0 = time.perf_counter(), time.process_time()
    trainer.train()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    ckpt_s: list[float] = []
    size = None
    if trial is not None:
        ckpt_s = list(CKPT_TIMES)
        assert len(trial.reports) == n // k, "a segment was not reported"
        size = dir_mb(Path(str(trial.latest_checkpoint)))
    return {"wall_s": wall, "cpu_s": cpu, "units": n, "ckpt_s": ckpt_s, "ckpt_mb": size}


FRAMEWORKS = {
    "lightning": (lightning_run, "epochs", (30, 5), (4, 2)),
    "transformers": (transformers_run, "steps", (300, 50), (40, 20)),
}
VARIANTS = ("plain", "hand-made", "callback")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="fewer units, one rep")
    ap.add_argument("--only", choices=sorted(FRAMEWORKS))
    a = ap.parse_args()
    reps = 1 if a.quick else a.reps
    logging.disable(logging.WARNING)
    warnings.filterwarnings("ignore")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch

    torch.set_num_threads(1)  # CPU time then counts work, not threads spinning for a core
    results: dict[str, Any] = {}
    rows = []
    for fw, (run, unit, full, quick) in FRAMEWORKS.items():
        if a.only and fw != a.only:
            continue
        n, k = quick if a.quick else full
        with tempfile.TemporaryDirectory() as d:
            run("plain", k, k, Path(d) / "warm")  # imports, first-call costs
        runs: dict[str, list[dict[str, Any]]] = {v: [] for v in VARIANTS}
        for r in range(reps):
            for v in VARIANTS:
                with tempfile.TemporaryDirectory() as d:
                    runs[v].append(run(v, n, k, Path(d) / f"{v}{r}"))
                print(f"{fw} {v} rep {r}: {runs[v][-1]['wall_s']:.2f} s", file=sys.stderr, flush=True)
        base = statistics.median(x["wall_s"] for x in runs["plain"])
        cpu_base = statistics.median(x["cpu_s"] for x in runs["plain"])
        summary = {}
        for v in VARIANTS:
            wall = statistics.median(x["wall_s"] for x in runs[v])
            cpu = statistics.median(x["cpu_s"] for x in runs[v])
            ck = [t for x in runs[v] for t in x["ckpt_s"]]
            summary[v] = {"wall_s": wall, "units_per_s": n / wall, "vs_plain": wall / base,
                          "cpu_s": cpu, "units_per_cpu_s": n / cpu, "cpu_vs_plain": cpu / cpu_base,
                          "ckpt_ms_median": statistics.median(ck) * 1e3 if ck else None,
                          "ckpt_share_of_wall": (statistics.median(sum(x["ckpt_s"]) / x["wall_s"]
                                                                   for x in runs[v]) if ck else None),
                          "ckpt_mb": runs[v][-1]["ckpt_mb"], "walls": [x["wall_s"] for x in runs[v]]}
            rows.append((fw, v, n, k, unit, summary[v]))
        results[fw] = {"unit": unit, "units": n, "segment_every": k, "reps": reps, "variants": summary}
    print("| framework | variant | units | segment every | units/s (wall) | wall vs plain "
          "| units per CPU-s | CPU vs plain | checkpoint per segment (ms) | checkpoints' share of wall "
          "| checkpoint MB |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for fw, v, n, k, unit, s in rows:
        ck_ms = f"{s['ckpt_ms_median']:.0f}" if s["ckpt_ms_median"] is not None else "-"
        mb = f"{s['ckpt_mb']:.2f}" if s["ckpt_mb"] is not None else "-"
        share = f"{100 * s['ckpt_share_of_wall']:.0f}%" if s["ckpt_share_of_wall"] is not None else "-"
        print(f"| {fw} | {v} | {n} {unit} | {k} | {s['units_per_s']:.2f} | {s['vs_plain']:.2f}x "
              f"| {s['units_per_cpu_s']:.2f} | {s['cpu_vs_plain']:.2f}x | {ck_ms} | {share} | {mb} |")
    out = ROOT / "benchmarks" / "results" / ("callback_overhead_quick.json" if a.quick
                                              else "callback_overhead.json")
    import lightning
    import torch
    import transformers
    out.write_text(json.dumps({
        "benchmark": "callback_overhead", "quick": a.quick, "results": results,
        "python": platform.python_version(), "torch": torch.__version__,
        "lightning": lightning.__version__, "transformers": transformers.__version__,
        "load_average": os.getloadavg(), "cpus": os.cpu_count()}, indent=1) + "\n")
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
