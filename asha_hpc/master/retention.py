"""Checkpoint retention's choice, pure: which trials' checkpoints may go now. The master
(``Master._retain``) removes them and journals ``checkpoints_removed``."""
from __future__ import annotations

from .state import FAILED, PAUSED, PENDING, QUEUED, RUNNING, STOPPED, ExperimentState


def removable_checkpoints(st: ExperimentState, keep_best: int, keep_every: bool = False) -> list[int]:
    """Ids of the trials whose checkpoints are no longer needed, in trial order. Kept: those of
    live trials, of paused trials the searcher may still promote, of failed ones (after a fix,
    ``resume --retry-failed`` continues from them), of stopped trials that only the compute cap
    kept from a promotion (``resume --max-compute`` continues them) and of the ``keep_best``
    best trials; every trial's with ``keep_every`` (``save_trial_latest``)."""
    if keep_every:
        return []
    keep = {t.id for t in st.ranked()[:keep_best]}
    may_be_promoted = getattr(st.searcher, "may_be_promoted", lambda tid: True)
    held_by_cap = getattr(st.searcher, "held_by_cap", lambda tid: False)
    gone = []
    for t in st.trials.values():
        if t.checkpoint is None or t.id in keep or t.status in (QUEUED, PENDING, RUNNING, FAILED):
            continue
        if t.status == PAUSED and may_be_promoted(t.id) or t.status == STOPPED and held_by_cap(t.id):
            continue
        gone.append(t.id)
    return gone
