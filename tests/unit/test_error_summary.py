"""The one line that stands for a failure (status, best, fail-fast's "the same error"): a
traceback's exception, also when a library's message goes on with a native backtrace."""
import re
import traceback

from hypothesis import given
from hypothesis import strategies as st

from asha_hpc.master.state import SUMMARY_MAX, error_signature, error_summary

# XGBoost 3's error for max_depth 0 with the exact tree method, as a trial's job wrote it
XGBOOST = """Traceback (most recent call last):
  File "/tmp/gbm/train_xgb2.py", line 23, in _run
    booster = xgb.train(params, dtrain, num_boost_round=segment.length - done,
              ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "/venv/lib/python3.11/site-packages/xgboost/core.py", line 324, in _check_call
    raise XGBoostError(py_str(_LIB.XGBGetLastError()))
xgboost.core.XGBoostError: [{clock}] /__w/xgboost/xgboost/src/tree/updater_colmaker.cc:180: \
Check failed: param_.max_depth > 0 (0 vs. 0) : exact tree method doesn't support unlimited depth.
Stack trace:
  [bt] (0) /venv/lib/python3.11/site-packages/xgboost/lib/libxgboost.so(+0x2c1a8c) [0x7f5fb34c1a8c]
  [bt] (7) /lib/x86_64-linux-gnu/libffi.so.8(+0x640e) [0x7f5fd102240e]
  [bt] (8) /lib/x86_64-linux-gnu/libffi.so.8(ffi_call+0xcd) [0x7f5fd1022b0d]

"""

# torch's C++ errors with TORCH_SHOW_CPP_STACKTRACES=1
TORCH_CPP = """Traceback (most recent call last):
  File "train.py", line 9, in train
    y = model(x)
RuntimeError: mat1 and mat2 shapes cannot be multiplied (8x3 and 4x2)
Exception raised from meta at /pytorch/aten/src/ATen/native/LinearAlgebra.cpp:192 (most recent call first):
frame #0: c10::Error::Error(c10::SourceLocation, std::string) + 0x96 (0x7f1 in libc10.so)
frame #1: <unknown function> + 0x1e2b (0x7f2 in libtorch_cpu.so)
"""


def test_a_native_backtrace_after_the_message_is_not_the_summary():
    summary = error_summary(XGBOOST.format(clock="06:32:28"))
    assert summary.startswith("xgboost.core.XGBoostError: [06:32:28] ")
    assert summary.endswith("exact tree method doesn't support unlimited depth.")
    assert error_summary(TORCH_CPP) == (
        "RuntimeError: mat1 and mat2 shapes cannot be multiplied (8x3 and 4x2)")


def test_the_same_library_error_at_another_time_is_the_same_error():
    """Fail-fast stops when the first trials fail alike: XGBoost's message starts with the
    clock time, which differs from trial to trial."""
    a, b = XGBOOST.format(clock="06:32:28"), XGBOOST.format(clock="06:41:07")
    assert error_signature(a) == error_signature(b)
    assert error_signature(a) != error_signature(TORCH_CPP)


def test_output_after_a_caught_traceback_still_ends_the_story():
    text = ("Traceback (most recent call last):\n  File \"x.py\", line 1\nValueError: retrying\n"
            "Stack trace:\n  [bt] (0) lib.so\nretried fine\nerror: --epochs must be positive\n")
    assert error_summary(text) == "error: --epochs must be positive"


def _formatted(name: str, message: str) -> str:
    err = type(name, (Exception,), {})
    try:
        raise err(message)
    except Exception as e:  # noqa: BLE001
        return "".join(traceback.format_exception(type(e), e, e.__traceback__))


words = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zl", "Zp")),
                min_size=1, max_size=40).filter(lambda s: any(c.isalnum() for c in s))


@given(name=st.from_regex(r"[A-Z][A-Za-z]{0,12}Error", fullmatch=True),
       first=words, backtrace=st.lists(st.from_regex(r"  \[bt\] \(\d\) [a-z./+0-9x()]{1,30}",
                                                     fullmatch=True), min_size=1, max_size=5))
def test_any_exception_with_a_backtrace_is_summed_up_by_its_first_line(name, first, backtrace):
    first = first.strip()
    text = _formatted(name, first + "\nStack trace:\n" + "\n".join(backtrace))
    assert error_summary(text) == f"{__name__}.{name}: {first}"


HEADLINE = re.compile(r"([\w.-]+: )?error: |[A-Za-z_][\w.]*(Error|Exception)(:|$)")


@given(name=st.from_regex(r"[A-Z][A-Za-z]{0,12}Error", fullmatch=True),
       lines=st.lists(words.filter(lambda s: s[:1].isalnum() and not s.startswith("frame #")
                                   and not HEADLINE.match(s)), min_size=1, max_size=4))
def test_any_exception_without_one_is_summed_up_by_its_whole_message(name, lines):
    """Lines that do not look like a native backtrace ("[bt]", "frame #N") are the message's
    own: all of them, on one line, cut in the middle when long (its start names the
    exception, and its end says what to do)."""
    text = _formatted(name, "\n".join(lines))
    whole = f"{__name__}.{name}: " + " ".join(x.strip() for x in lines)
    summary = error_summary(text)
    if len(whole) <= SUMMARY_MAX:
        assert summary == whole
    else:
        start, end = summary.split(" … ")
        assert len(summary) <= SUMMARY_MAX and whole.startswith(start) and whole.endswith(end)
        assert summary.startswith(f"{__name__}.{name}: ")


# torch 2.13's refusal of a checkpoint that holds a numpy array, as the trial's job wrote it:
# the line that names what was refused is in the middle, the last is the same for every refusal
TORCH_WEIGHTS_ONLY = """Traceback (most recent call last):
  File "/home/u/digits/train.py", line 41, in train
    state = torch.load(trial.latest_checkpoint / "model.pt")
  File "/venv/lib/python3.11/site-packages/torch/serialization.py", line 1609, in load
    raise pickle.UnpicklingError(_get_wo_message(str(e))) from None
_pickle.UnpicklingError: Weights only load failed. This file can still be loaded, to do so you \
have two options, \x1b[1mdo those steps only if you trust the source of the checkpoint\x1b[0m.\x20
\t(1) In PyTorch 2.6, we changed the default value of the `weights_only` argument in \
`torch.load` from `False` to `True`. Re-running `torch.load` with `weights_only` set to `False` \
will likely succeed, but it can result in arbitrary code execution. Do it only if you got the \
file from a trusted source.
\t(2) Alternatively, to load with `weights_only=True` please check the recommended steps in the \
following error message.
\tWeightsUnpickler error: Unsupported global: GLOBAL {name} was not an allowed global by \
default. Please use `torch.serialization.add_safe_globals([{name}])` or the \
`torch.serialization.safe_globals([{name}])` context manager to allowlist this global if you \
trust this class/function.

Check the documentation of torch.load to learn more about types accepted by default with \
weights_only https://pytorch.org/docs/stable/generated/torch.load.html.
"""


def test_a_message_of_several_lines_is_summed_up_by_all_of_them():
    """status showed only "Check the documentation of torch.load ...", the same line for
    every refusal and without the exception's name; and fail-fast took a numpy array in the
    checkpoint and a class of the user's own for one error."""
    numpy = TORCH_WEIGHTS_ONLY.format(name="numpy._core.multiarray._reconstruct")
    summary = error_summary(numpy)
    assert summary.startswith("_pickle.UnpicklingError: Weights only load failed. This file can "
                              "still be loaded, to do so you have two options, do those steps")
    assert "add_safe_globals([numpy._core.multiarray._reconstruct])" in summary
    assert summary.endswith("torch.load.html.") and "\x1b" not in summary and "\n" not in summary
    assert len(summary) <= SUMMARY_MAX
    own = TORCH_WEIGHTS_ONLY.format(name="__main__.Config")
    assert error_signature(numpy) != error_signature(own)


def test_fail_fast_and_status_events_show_the_library_error_as_written():
    """Three trials fail with XGBoost's error at three clock times: the same error, so the
    search stops, and the stop line shows the first trial's message as it was written; the
    events of ``status`` and the live report show it too, not the last [bt] line."""
    from asha_hpc.master.state import replay
    from asha_hpc.views.status import describe

    from helpers import four_trials_cfg

    cfg = four_trials_cfg()
    recs = [{"kind": "init"}]
    for tid, clock in ((1, "06:32:28"), (2, "06:32:31"), (3, "06:33:02")):
        recs += [{"kind": "intent", "trial": tid, "segment": 0, "attempt": 0},
                 {"kind": "result", "trial": tid, "segment": 0, "attempt": 0, "status": "error",
                  "error": XGBOOST.format(clock=clock)}]
    tid, why = replay(cfg, recs).hopeless()
    assert tid == 1 and why.startswith("the first 3 trials (1, 2, 3) all failed with the same error "
                                       "before any segment succeeded: xgboost.core.XGBoostError: "
                                       "[06:32:28] /__w/xgboost")
    text = describe(recs[-1], "m")
    assert text.startswith("trial 3 error: xgboost.core.XGBoostError: [06:33:02]") and "[bt]" not in text


def test_one_bug_in_every_trial_is_the_same_error_whatever_path_or_value_it_names():
    """Fail-fast compares the first trials' errors. A restore that opens a misspelt file names
    each trial's own folder; argparse quotes the sampled values it refuses: each trial's
    message differed, and the search spent 18 to 48 jobs where fail-fast stops at 3 to 6."""
    def missing(tid):
        return _formatted("FileNotFoundError", f"[Errno 2] No such file or directory: "
                          f"'/scratch/u/runs/q1/trials/{tid:05d}/checkpoints/"
                          f"t{tid:05d}-s000-a01-0001/stat.json'")

    assert error_signature(missing(3)) == error_signature(missing(12))
    args = ("train.py: error: unrecognized arguments: --optimizer.lr={} --model.hidden={}")
    assert error_signature(args.format(0.0116, 98)) == error_signature(args.format(1e-4, 64))
    assert error_signature(missing(3)) != error_signature(args.format(0.0116, 98))
    # a categorical's value the message quotes (Hydra's "+model.act=relu"; "unknown
    # activation gelu") is the trial's own as much as a number is
    hydra = "ConfigCompositionException: Could not override 'model.act'. To append, use +model.act={}"
    assert error_signature(hydra.format("relu"), {"model": {"act": "relu"}}) == \
        error_signature(hydra.format("gelu"), {"model": {"act": "gelu"}})
    assert error_signature("ValueError: unknown activation gelu_new", {"act": "gelu_new"}) == \
        error_signature("ValueError: unknown activation swish", {"act": "swish"})
    # trials too large for the GPU are no bug of every trial's: their sizes keep them apart
    oom = "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate {} GiB"
    assert error_signature(oom.format("2.00")) != error_signature(oom.format("8.00"))
    assert error_signature(oom.format("2.00")) == error_signature(oom.format("2.00"))


@given(name=st.from_regex(r"[A-Z][A-Za-z]{0,12}Error", fullmatch=True),
       before=st.from_regex(r"[a-z][a-z ]{0,20}[a-z]", fullmatch=True),
       paths=st.lists(st.from_regex(r"(/[A-Za-z0-9_.-]{1,12}){1,6}", fullmatch=True),
                      min_size=2, max_size=2),
       values=st.lists(st.one_of(st.integers(-10**6, 10**6),
                                 st.floats(allow_nan=False, allow_infinity=False)),
                       min_size=2, max_size=2))
def test_any_path_and_value_in_an_error_leave_it_the_same_error(name, before, paths, values):
    a, b = (_formatted(name, f"{before}: '{p}' = {v}") for p, v in zip(paths, values))
    assert error_signature(a) == error_signature(b)
    assert error_signature(a) != error_signature(_formatted(name, f"{before} other: x"))


def test_a_rank_failure_is_summed_up_by_which_peer_it_was_and_what_this_rank_saw():
    """status showed gloo's "Connection closed by peer" alone; and a deep Lightning traceback
    (over 4000 characters) lost the job's headline from the journal, which kept the end."""
    from asha_hpc.protocol.messages import MAX_ERROR, from_json

    frames = "".join(f'  File "/venv/lightning/loops/fit_loop.py", line {i}, in run\n    x()\n'
                     for i in range(200))
    error = ("rank 1 on node gpu07 died (process 12685 is gone); then this rank failed:\n"
             "Traceback (most recent call last):\n" + frames +
             "RuntimeError: [../pair.cc:553] Connection closed by peer [127.0.0.1]:10663")
    assert error_summary(error) == (
        "rank 1 on node gpu07 died (process 12685 is gone); then this rank failed: RuntimeError: "
        "[../pair.cc:553] Connection closed by peer [127.0.0.1]:10663")
    msg = from_json({"type": "result", "trial": 1, "segment": 0, "attempt": 0, "key": "t00001-s000-a00",
                     "status": "error", "error": error, "metrics": None, "length": 4},
                    "/e", "t00001-s000-a00.result.json")
    kept = msg.record().error
    assert len(kept) <= MAX_ERROR and error_summary(kept) == error_summary(error)


ARRAYS = st.lists(st.lists(st.floats(-10, 10, allow_nan=False), min_size=2, max_size=4),
                  min_size=1, max_size=3).filter(lambda rows: len({len(r) for r in rows}) == 1)


@given(ARRAYS, ARRAYS)
def test_an_error_that_prints_an_array_is_the_same_error_whatever_its_values(a, b):
    """Keras's "Unknown variable: <Variable ... value=[[ 0.028 -0.113] ...": numpy aligns the
    columns with spaces that depend on the values, so one bug's message differed per trial."""
    import numpy as np

    def error(values):
        return ("Traceback (most recent call last):\n  File \"train.py\", line 3, in train\n"
                f"ValueError: Unknown variable: <Variable path=sequential/dense_1/kernel, "
                f"shape=(4, 2), value={np.array2string(np.array(values), max_line_width=10**6)}>. "
                f"This optimizer can only be called "
                f"for the variables it was originally built with.\n")

    if np.array(a).shape == np.array(b).shape:
        assert error_signature(error(a)) == error_signature(error(b))
    assert "Unknown variable" in error_signature(error(a))
