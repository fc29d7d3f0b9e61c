"""A trial's checkpoints on disk, as jobs write them and everything else reads them: one folder
per checkpoint under ``trials/<id>/checkpoints/``, named so that names sort in creation order,
complete when its ``MANIFEST.json`` lists every file with its size (``Trial.save_checkpoint``
writes it last, then renames the folder into place)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

from .expdir import read_json

MANIFEST = "MANIFEST.json"


def latest_checkpoint(ckpt_root: Path) -> Path | None:
    """The newest complete checkpoint (names sort in creation order; a folder without a valid
    manifest, or whose files do not match it, is incomplete and skipped, with a warning)."""
    path, skipped = newest_checkpoint(ckpt_root, quiet=False)
    if skipped:  # a published checkpoint lost its manifest or a file: say so, never silently
        print(f"asha_hpc: warning: skipping incomplete checkpoint {'; '.join(skipped)}: "
              + (f"resuming from {path}" if path else "no complete checkpoint left, training "
                 "starts from the beginning"), file=sys.stderr, flush=True)
    return path


def newest_checkpoint(ckpt_root: Path, quiet: bool = True) -> tuple[Path | None, list[str]]:
    """(the newest complete checkpoint or None, "path (why)" of each newer one skipped as
    incomplete); not ``quiet``: a warning for files that are no checkpoint."""
    try:
        names = sorted((n for n in os.listdir(ckpt_root) if not n.startswith(".")), reverse=True)
    except FileNotFoundError:
        return None, []
    skipped = []
    strays = [n for n in names if not (ckpt_root / n).is_dir()]
    if strays and not quiet:  # the user's own file (a best.pt) where only asha_hpc's go
        print(f"asha_hpc: warning: {', '.join(str(ckpt_root / n) for n in strays)}: not a "
              f"checkpoint folder of asha_hpc's; this folder holds only those, and checkpoint "
              f"retention removes all of it: keep your own files in the trial's folder "
              f"(trial.dir) or inside a checkpoint (trial.save_checkpoint())",
              file=sys.stderr, flush=True)
        names = [n for n in names if n not in strays]
    for name in names:
        path = ckpt_root / name
        why = checkpoint_problem(path)
        if why is None:
            break
        skipped.append(f"{path} ({why})")
    else:
        path = None
    return path, skipped


def checkpoint_length(path: Path | None) -> int | None:
    """The length a checkpoint was taken at (``save_checkpoint(length=...)``), or None."""
    if path is None:
        return None
    man, err = read_json(path / MANIFEST)
    v = man.get("length") if not err and isinstance(man, dict) else None
    return v if isinstance(v, int) and not isinstance(v, bool) else None


# what code that never read trial.latest_checkpoint is told (the job's log, the master, status)
RESTORE_HINT = ("Load the model, the optimizer and the epoch from trial.latest_checkpoint at the "
                "start of the function (README: Writing a trial)")
# a command's: a Determined script (the Core API shim, det.pytorch) restores another way
DETERMINED_RESTORE_HINT = ("A Determined script passes det.get_cluster_info().latest_checkpoint "
                           "to Trainer.fit(latest_checkpoint=...) or opens it with "
                           "core_context.checkpoint.restore_path(...)")


def checkpoint_bytes(path: Path | None) -> int:
    """The size of a checkpoint's files, by its manifest (0 where there is none)."""
    man, err = read_json(path / MANIFEST) if path is not None else ({}, "none")
    files = man.get("files") if not err and isinstance(man, dict) else None
    if not isinstance(files, dict):
        return 0
    return sum(v for v in files.values() if isinstance(v, int) and not isinstance(v, bool))


def checkpoint_problem(path: Path) -> str | None:
    """Why ``path`` is not a complete checkpoint, or None."""
    man, err = read_json(path / MANIFEST)
    if err:
        return f"manifest {err}"
    if not isinstance(man, dict) or not isinstance(man.get("files"), dict):
        return "manifest has no file list"
    for rel, size in man["files"].items():
        try:
            if (path / rel).stat().st_size != size:
                return f"{rel} has the wrong size"
        except OSError:
            return f"{rel} is missing"
    return None
