"""A configuration its code rejects (``InvalidHP``: max_depth 0 with an exact tree method, a
batch that does not divide the data) teaches a model sampler: at whatever length the model is
fitted, it counts among the worst, so tpe and gp draw less where the code rejects. Without it,
the model of the longest length never heard of them, and gp's expected improvement, highest
where it knows nothing, drew 90-99% of its configurations there: a search of 120 trials
created 400-600 (each a job)."""
from collections import deque

import pytest

from asha_hpc.config import SearcherConfig
from asha_hpc.searcher import CreateTrial, ResumeTrial, SegmentCompleted, TrialInvalid, make_searcher
from asha_hpc.space import parse_space

SPACE, _ = parse_space({"x": {"type": "double", "minval": 0, "maxval": 1},
                        "y": {"type": "double", "minval": 0, "maxval": 1}})
TRIALS = 120


def search(sampler: str, seed: int, border: float, best_x: float) -> tuple[float, int]:
    """(share of the model's draws the code rejects, trials created): x below ``border`` is
    rejected, the loss is smallest at (``best_x``, 0.5)."""
    cfg = SearcherConfig(name="async_halving", max_length=4, max_trials=TRIALS, num_rungs=2,
                         max_concurrent_trials=1, divisor=4, sampler=sampler)
    s = make_searcher(cfg, SPACE, seed)
    hp: dict[int, dict] = {}
    todo = deque(s.start())
    while todo:
        a = todo.popleft()
        if isinstance(a, CreateTrial):
            hp[a.trial_id] = a.hparams
        if isinstance(a, (CreateTrial, ResumeTrial)):
            x, y = hp[a.trial_id]["x"], hp[a.trial_id]["y"]
            if x < border:
                todo.extend(s.on_event(TrialInvalid(a.trial_id)))
            else:
                todo.extend(s.on_event(SegmentCompleted(a.trial_id, a.length,
                                                        (x - best_x) ** 2 + (y - 0.5) ** 2)))
    model = s._model
    drawn = [hp[t] for t in sorted(hp) if t in model.known or t in model.fresh]
    assert len(drawn) > 30
    return sum(h["x"] < border for h in drawn) / len(drawn), len(hp)


@pytest.mark.parametrize("sampler", ["tpe", "gp"])
@pytest.mark.parametrize("border, best_x, most", [
    (0.4, 0.9, 0.1),  # a rejected corner away from the best: a random draw hits it 40% of times
    (0.6, 0.6, 0.3),  # the best on the border: half of any step from it is rejected
])
def test_a_model_draws_less_where_the_code_rejects(sampler, border, best_x, most):
    runs = [search(sampler, seed, border, best_x) for seed in range(4)]
    share = sum(r[0] for r in runs) / len(runs)
    assert share < most, runs
    if border < best_x:  # the replaced ones: about the random draws' rejections, no more
        assert all(created < 1.5 * TRIALS for _, created in runs), runs
