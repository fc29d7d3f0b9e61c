"""PyTorch's DataLoader installs a SIGCHLD handler that raises ("DataLoader worker (pid N) is
killed by signal") in whatever Python code runs when a worker has died. After the training
code raised for that very reason, the next child to exit raised it again inside the job's own
handling of the error: the job ended without a result (a warm worker with it), the error was
lost, and the attempt counted as a dead job. Here the code installs such a handler, as
torch does, and a child of it exits while the job formats its error."""
from helpers import journal, one_trial_training

MODEL = '''
import signal, subprocess, sys, time


class SlowToSay(RuntimeError):
    def __str__(self):  # formatting this error takes a while: the child exits meanwhile
        time.sleep(0.8)
        return "DataLoader worker (pid 4242) is killed by signal: Killed."


def train(trial):
    def torch_like(signum, frame):  # torch.utils.data._utils.signal_handling's, in short
        raise RuntimeError("DataLoader worker (pid 4243) exited unexpectedly")

    signal.signal(signal.SIGCHLD, torch_like)
    (trial.dir / "training").write_text("x")
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.3)"])
    raise SlowToSay()
'''


def test_a_child_signal_handler_that_raises_does_not_lose_the_error(tmp_path):
    (tmp_path / "sigchld_model.py").write_text(MODEL)
    exp, p = one_trial_training(tmp_path, {"entrypoint": "sigchld_model:train"}, 4)
    try:
        p.wait(timeout=120)  # max_restarts 0: the search fails after this one error
    finally:
        if p.poll() is None:
            p.kill()
    recs = journal(exp)
    results = [r for r in recs if r["kind"] == "result"]
    assert not [r for r in recs if r["kind"] == "job_dead"], recs[-5:]
    assert len(results) == 1 and results[0]["status"] == "error", results
    assert "SlowToSay: DataLoader worker (pid 4242) is killed by signal" in results[0]["error"]
