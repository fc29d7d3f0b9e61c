"""What a ``file.py:function`` entry point's code pickles loads afterwards in the file's own
folder, as ``import file`` names it: a learning-rate schedule that Stable-Baselines3 keeps in
its model file, a model class that ``torch.save(model)`` or scikit-learn's pickles refer to.
The jobs imported such a file under a private name (``asha_entry_<stem>``), and loading the
best trial's model outside a job failed with "No module named 'asha_entry_...'". Pickles that
jobs of those releases wrote still load in a job."""
import importlib.util
import pickle
import subprocess
import sys

import yaml

from helpers import cli, final_state

MODEL = '''
import pickle
from pathlib import Path


class Scaler:
    def __init__(self, factor):
        self.factor = factor


def train(trial):
    old = pickle.loads((Path(__file__).parent / "old.pkl").read_bytes())  # an earlier release's
    for segment in trial.segments():
        with trial.save_checkpoint() as path:
            (path / "scaler.pkl").write_bytes(pickle.dumps(Scaler(trial.hparams["x"])))
        segment.report(loss=trial.hparams["x"] ** 2 + old.factor)
'''


def test_a_pickle_of_the_entry_files_class_loads_in_its_folder_and_old_ones_in_jobs(tmp_path):
    (tmp_path / "mymodel.py").write_text(MODEL)
    # a checkpoint of an earlier release: the class as a job then named it
    spec = importlib.util.spec_from_file_location("asha_entry_mymodel", tmp_path / "mymodel.py")
    old = importlib.util.module_from_spec(spec)
    sys.modules["asha_entry_mymodel"] = old
    try:
        spec.loader.exec_module(old)
        (tmp_path / "old.pkl").write_bytes(pickle.dumps(old.Scaler(10.0)))
    finally:
        del sys.modules["asha_entry_mymodel"]
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({
        "name": "pickles", "entrypoint": "mymodel.py:train",
        "searcher": {"name": "random", "metric": "loss", "max_length": 1, "max_trials": 2,
                     "max_concurrent_trials": 2},
        "hyperparameters": {"x": {"type": "double", "minval": -1, "maxval": 1}},
        "max_restarts": 0, "poll_interval_s": 0.2, "local": {"gpus": [], "workers": 1}}))
    exp = tmp_path / "run"
    cli("run", tmp_path / "c.yaml", "--exp-dir", exp)
    _, st = final_state(exp)
    assert st.lifecycle == "completed" and st.counts()["failed"] == 0
    best = st.ranked()[0]
    assert best.metric >= 10.0  # the old pickle loaded in the job
    # the user's notebook or script, in the entry file's folder
    load = ("import pickle, sys; o = pickle.load(open(sys.argv[1], 'rb')); "
            "print(type(o).__module__, type(o).__name__, o.factor)")
    r = subprocess.run([sys.executable, "-c", load, f"{best.checkpoint}/scaler.pkl"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["mymodel", "Scaler", repr(best.hparams["x"])]
