"""What a failed command's error says (``_StderrTail``): the script's own exception, even
when a launcher's summary ends the stream (torchrun's ChildFailedError and its frame of "="
rules), and with several ranks the rank torchrun names as the root cause, not the peer that
lost its connection to it. ``error_summary`` (status, fail-fast) shows that line."""
import subprocess
import sys

from asha_hpc.job.jobmain import _StderrTail
from asha_hpc.master.state import error_summary

TORCHRUN = """[rank1]: Traceback (most recent call last):
[rank1]:   File "train_ddp.py", line 32, in main
[rank1]:     raise RuntimeError(f"rank 1 blew up at epoch {epoch+1}")
[rank1]: RuntimeError: rank 1 blew up at epoch 2
[rank0]: Traceback (most recent call last):
[rank0]:   File "train_ddp.py", line 29, in main
[rank0]: RuntimeError: [gloo/transport/tcp/pair.cc:553] Connection closed by peer [127.0.0.1]:41170.
E1204 18:38:32.494000 17052 api.py:1002] failed (exitcode: 1) local_rank: 1 (pid: 17062)
Traceback (most recent call last):
  File "/venv/bin/torchrun", line 8, in <module>
    sys.exit(main())
torch.distributed.elastic.multiprocessing.errors.ChildFailedError:
============================================================
train_ddp.py FAILED
------------------------------------------------------------
Failures:
[1]:
  time      : 2026-12-04_18:38:32
  host      : localhost
  rank      : 0 (local_rank: 0)
  exitcode  : -15 (pid: 17061)  (SIGTERM)
  error_file: <N/A>
  traceback : Signal 15 (SIGTERM) received by PID 17061
------------------------------------------------------------
Root Cause (first observed failure):
[0]:
  time      : 2026-12-04_18:38:32
  host      : localhost
  rank      : 1 (local_rank: 1)
  exitcode  : 1 (pid: 17062)
  error_file: <N/A>
  traceback : To enable traceback see: https://pytorch.org/docs/stable/elastic/errors.html
============================================================
"""

PLAIN = """Traceback (most recent call last):
  File "train.py", line 3, in <module>
    x = {}["lr"]
KeyError: 'lr'

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "train.py", line 5, in <module>
    raise ValueError("no learning rate in the hyperparameters")
ValueError: no learning rate in the hyperparameters
"""


def _tail(text):
    proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.stderr.write(sys.argv[1])",
                             text], stderr=subprocess.PIPE)
    tail = _StderrTail(proc)
    proc.wait()
    tail.join()
    return tail


def test_torchrun_names_the_root_cause_ranks_exception(capsys):
    tail = _tail(TORCHRUN)
    assert tail.exception() == "RuntimeError: rank 1 blew up at epoch 2"
    assert error_summary(tail.text()) == "RuntimeError: rank 1 blew up at epoch 2"
    assert capsys.readouterr().err == TORCHRUN  # the job's log still gets all of it


def test_a_plain_script_names_its_last_exception():
    tail = _tail(PLAIN)
    assert error_summary(tail.text()) == "ValueError: no learning rate in the hyperparameters"
    assert tail.text().endswith(PLAIN.strip())  # nothing added when the end says it


def test_a_line_of_rules_is_never_the_summary():
    assert error_summary("RuntimeError: boom\n=====\n-----\n") == "RuntimeError: boom"


def test_an_exception_the_script_caught_and_went_on_from_is_not_its_error():
    caught = ("Traceback (most recent call last):\nValueError: a retry of the download\n"
              "downloaded after a retry\nerror: --epochs must be positive\n")
    assert error_summary(_tail(caught).text()) == "error: --epochs must be positive"


ABORTED_AT_EXIT = """INFO: [12239] root: rank 0: stored shard in baae1833 at /x/baae1833.partial
terminate called without an active exception
terminate called without an active exception
W1204 21:39:41.920000 12297 api.py:1028] Sending process 12303 closing signal SIGTERM
E1204 21:39:41.952000 12297 api.py:1002] failed (exitcode: -6) local_rank: 1 (pid: 12304)
Traceback (most recent call last):
  File "/venv/lib/python3.11/site-packages/torch/distributed/launcher/api.py", line 383, in launch_agent
    raise ChildFailedError(
torch.distributed.elastic.multiprocessing.errors.ChildFailedError:
=======================================================
python3 FAILED
-------------------------------------------------------
Root Cause (first observed failure):
[0]:
  rank      : 1 (local_rank: 1)
  exitcode  : -6 (pid: 12304)  (SIGABRT)
  traceback : Signal 6 (SIGABRT) received by PID 12304
=======================================================
"""


def test_ranks_that_abort_as_they_exit_are_told_to_destroy_their_process_group():
    """torch 2.x with a gloo group left alive: a rank aborts in the interpreter's teardown,
    after its work, with no Python error; the error says what to add to the script."""
    summary = error_summary(_tail(ABORTED_AT_EXIT).text())
    assert "terminate called without an active exception" in summary
    assert "call torch.distributed.destroy_process_group() at the end of the script" in summary
    assert "destroy_process_group" not in _tail(TORCHRUN).text()  # a Python error: that one


def test_a_callbacks_refusal_in_a_command_names_what_that_frameworks_command_passes():
    """A Transformers script keeps resume_from_checkpoint=cb.resume_from (told to pass
    $ASHA_LATEST_CHECKPOINT as a flag instead, its new trials failed on the empty value)."""
    from asha_hpc.job.command_trial import command_terms

    hf = command_terms("AshaCallback: TrainingArguments(max_steps=10) but the searcher's "
                       "max_length is 20 steps: pass TrainingArguments(max_steps=cb.max_steps)")
    assert "--max_steps ${ASHA_MAX_LENGTH}" in hf and "resume_from_checkpoint=cb.resume_from" in hf
    assert "ckpt_path" not in hf and "--trainer." not in hf
    pl = command_terms("AshaCallback: Trainer(max_steps=5) but the searcher's max_length is 8 "
                       "steps: pass Trainer(max_steps=cb.max_steps)")
    assert "--trainer.max_steps" in pl and "${ASHA_LATEST_CHECKPOINT:+--ckpt_path" in pl
    assert command_terms("AshaCallback: fit(initial_epoch=0) but cb.initial_epoch is 2") == ""
