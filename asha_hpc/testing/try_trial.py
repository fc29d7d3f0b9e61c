"""``try_trial``: a training function run for one trial in this process, as a search would run
it, before a search does (Optuna's ``FixedTrial``, for a notebook or a unit test):

    from asha_hpc.testing import try_trial
    restored = try_trial(train, {"lr": 0.01}, [1, 4, 16], metric="val_loss")
    in_place = try_trial(train, {"lr": 0.01}, [1, 4, 16], metric="val_loss", in_place=True)
    assert restored == in_place          # the checkpoint restores all that training needs

Each length is a segment: the first as a new trial's, each next one as a promoted trial's,
either in a new call from the checkpoint the last one saved (a job per segment, the default)
or in the same call's ``trial.segments()`` loop (a warm worker). What differs between the two
is what the checkpoint misses: an optimizer's state, a scheduler, an epoch counter, the data
order. The folder (a temporary one unless given) holds the trial's checkpoints and curve as an
experiment's trial folder would.
"""
from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..errors import AshaError
from ..job.trial import Trial
from ..protocol.expdir import ExpDir, attempt_key


def try_trial(train: Callable[[Trial], Any], hparams: dict[str, Any], lengths: Sequence[int], *,
              metric: str, in_place: bool = False, folder: str | Path | None = None,
              length_unit: str = "units", seed: int = 0) -> list[dict[str, Any]]:
    """Run ``train`` for one trial through ``lengths`` (increasing); returns each segment's
    report, ``[{"length": L, "metrics": {...}}, ...]``, in order. Raises what ``train``
    raises; AshaError when a segment ends without a report (its code returned early)."""
    lengths = [int(x) for x in lengths]
    if not lengths or any(b <= a for a, b in zip(lengths, lengths[1:])) or lengths[0] < 1:
        raise AshaError(f"lengths: increasing lengths from 1 up, got {list(lengths)}")
    root = Path(folder) if folder is not None else Path(tempfile.mkdtemp(prefix="asha-try-"))
    exp = ExpDir.create(root / "experiment")

    def trial(first: int, segments: list[int]) -> Trial:
        key = attempt_key(1, first, 0)
        return Trial(trial_id=1, hparams=dict(hparams), trial_dir=exp.trial_dir(1),
                     run_dir=exp.run_dir(1, key), segments=segments, first_segment=first,
                     metric=metric, key=key, length_unit=length_unit,
                     max_length=lengths[-1], seed=seed)

    out: list[dict[str, Any]] = []
    if in_place:
        t = trial(0, lengths)
        train(t)
        out = [{"length": s.length, "metrics": s.reported} for s in t.reports]
    else:
        for i, length in enumerate(lengths):
            t = trial(i, [length])
            train(t)
            out += [{"length": s.length, "metrics": s.reported} for s in t.reports]
    if [r["length"] for r in out] != lengths:
        got = [r["length"] for r in out]
        raise AshaError(f"the code reported segments {got} of {lengths}: each segment of "
                        f"trial.segments() ends with segment.report(...)")
    return out
