"""A search whose work is one long segment (a `single` search, a final run, a first rung of a
whole day) finishes no segment until the end: `status` must still say that training is under
way and for how long, not only "0/8 epochs planned (0.0%)"."""
import time

from helpers import UNTIL_GO, cli, one_trial_training


def test_status_says_a_long_segment_runs_and_for_how_long(tmp_path):
    (tmp_path / "slow_model.py").write_text(UNTIL_GO)
    exp, p = one_trial_training(tmp_path, {"entrypoint": "slow_model:train"}, 8)
    try:
        deadline = time.time() + 60
        while True:
            out = cli("status", exp).stdout
            if ", for " in out or time.time() > deadline:
                break
            time.sleep(0.5)
        assert "progress: 0/8 units planned (0.0%; 8 more in running segments)" in out, out
        line = next(x for x in out.splitlines() if x.startswith("  trial 1 -> length 8"))
        assert ", for " in line and line.rstrip().endswith("s"), line
        (tmp_path / "go").write_text("x")
        p.wait(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
    out = cli("status", exp).stdout
    assert "in running segments" not in out and "8/8 units trained (100.0%)" in out, out
