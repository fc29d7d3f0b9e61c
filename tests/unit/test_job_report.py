"""``python -m asha_hpc.report`` (the name the README and users' scripts call) and
``python -m asha_hpc.job.job_report`` write the same lines into $ASHA_REPORT_FILE."""
import json
import os
import subprocess
import sys

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st


@pytest.mark.parametrize("module", ["asha_hpc.report", "asha_hpc.job.job_report"])
def test_report_command_appends_the_metrics(tmp_path, module):
    out = tmp_path / "report.jsonl"
    env = dict(os.environ, ASHA_REPORT_FILE=str(out))
    for args in (["--step", "5", "loss=0.8"], ["val_loss=0.31", "accuracy=0.9", "opt=adam"]):
        subprocess.run([sys.executable, "-m", module, *args], env=env, check=True)
    assert [json.loads(line) for line in out.read_text().splitlines()] == [
        {"step": 5, "metrics": {"loss": 0.8}},
        {"metrics": {"val_loss": 0.31, "accuracy": 0.9, "opt": "adam"}},
    ]
    bad = subprocess.run([sys.executable, "-m", module, "val_loss"], env=env,
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "'val_loss' is not NAME=VALUE" in bad.stderr


def test_what_the_command_writes_is_what_the_job_reads(tmp_path):
    """The writer (the report command) and the reader (read_report, in the job) agree; lines a
    script wrote by hand are read the same, and bad ones are skipped with their line number."""
    from asha_hpc.job.job_report import main, read_report

    out = tmp_path / "report.jsonl"
    os.environ["ASHA_REPORT_FILE"] = str(out)
    try:
        assert main(["--step", "1", "loss=0.9"]) == 0
        assert main(["--step", "2", "loss=0.7"]) == 0
        assert main(["val_loss=0.5"]) == 0
        with open(out, "a") as f:
            f.write("{torn\n[1, 2]\n" + json.dumps({"metrics": 3}) + "\n")
            f.write(json.dumps({"reached": 12}) + "\n")
        assert main(["val_loss=0.31", "accuracy=0.9"]) == 0
    finally:
        del os.environ["ASHA_REPORT_FILE"]
    got = read_report(out)
    assert got.points == [(1, {"loss": 0.9}), (2, {"loss": 0.7})]
    assert got.metrics == {"val_loss": 0.31, "accuracy": 0.9}  # the last result counts
    assert got.reached == 12 and got.invalid is None
    assert read_report(tmp_path / "missing.jsonl").metrics is None


def test_a_final_models_result_and_its_early_end_as_a_shell_script_reports_them(tmp_path):
    """`python -m asha_hpc.report accuracy=0.96 --reached 18 --ended-early "..."`: the metrics
    line (with the length the checkpoint holds), then the end: what the job reads as a final
    model's result."""
    from asha_hpc.job.job_report import main, read_report

    out = tmp_path / "report.jsonl"
    os.environ["ASHA_REPORT_FILE"] = str(out)
    try:
        assert main(["accuracy=0.96", "--reached", "18", "--ended-early", "stopped at 18"]) == 0
    finally:
        del os.environ["ASHA_REPORT_FILE"]
    assert [json.loads(x) for x in out.read_text().splitlines()] == [
        {"metrics": {"accuracy": 0.96}, "reached": 18}, {"ended_early": "stopped at 18"}]
    got = read_report(out)
    assert got.metrics == {"accuracy": 0.96} and got.reached == 18
    assert got.ended_early == "stopped at 18"
    os.environ["ASHA_REPORT_FILE"] = str(tmp_path / "alone.jsonl")
    try:  # either alone: a line of its own
        assert main(["--reached", "7"]) == 0 and main(["--ended-early", "no gain"]) == 0
    finally:
        del os.environ["ASHA_REPORT_FILE"]
    assert [json.loads(x) for x in (tmp_path / "alone.jsonl").read_text().splitlines()] == [
        {"reached": 7}, {"ended_early": "no gain"}]


def test_a_saved_checkpoint_entry_is_read_with_its_length_and_bad_names_are_refused(tmp_path,
                                                                                   capsys):
    """``--saved ENTRY --reached N``: the entry of the checkpoint folder a failed command still
    leaves to its retry. Only a plain entry name counts: nothing outside that folder."""
    from asha_hpc.job.job_report import main, read_report

    out = tmp_path / "report.jsonl"
    ckpt = tmp_path / "ckpt"
    (ckpt / "ckpt-100").mkdir(parents=True)
    (ckpt / "ckpt-200").write_text("x")
    os.environ.update(ASHA_REPORT_FILE=str(out), ASHA_CHECKPOINT_DIR=str(ckpt))
    try:
        assert main(["--saved", "ckpt-100", "--reached", "100"]) == 0
        assert main(["--saved", "ckpt-200"]) == 0
        assert main(["--saved", "../../elsewhere"]) == 2
        assert main(["--saved", "ckpt-300"]) == 2  # a typo, or reported before it was written
    finally:
        del os.environ["ASHA_REPORT_FILE"], os.environ["ASHA_CHECKPOINT_DIR"]
    err = capsys.readouterr().err
    assert "--saved '../../elsewhere': name an entry of $ASHA_CHECKPOINT_DIR" in err
    assert (f"--saved 'ckpt-300': there is no such entry in $ASHA_CHECKPOINT_DIR ({ckpt}; it "
            f"holds 'ckpt-100', 'ckpt-200'): write the checkpoint there first") in err
    got = read_report(out)
    assert (got.saved, got.saved_reached, got.reached) == ("ckpt-200", None, 100)
    with open(out, "a") as f:
        f.write(json.dumps({"saved": "/etc"}) + "\n" + json.dumps({"saved": 7}) + "\n")
    got = read_report(out)
    assert got.saved == "ckpt-200"
    assert capsys.readouterr().err.count('"saved" must name an entry of ASHA_CHECKPOINT_DIR') == 2
    # "." is the whole folder (what CommandTrial.save_checkpoint writes); ".." and "" are not
    with open(out, "a") as f:
        f.write("".join(json.dumps(x) + "\n" for x in (
            {"saved": ".", "reached": 300}, {"saved": ".."}, {"saved": ""})))
    got = read_report(out)
    assert (got.saved, got.saved_reached, got.reached) == (".", 300, 300)
    err = capsys.readouterr().err  # the whole file read again: lines 3 and 4 said once more
    refused = [x.split(".jsonl:")[1].split(":")[0] for x in err.splitlines()
               if '"saved" must name an entry of ASHA_CHECKPOINT_DIR' in x]
    assert refused == ["3", "4", "6", "7"], err


def test_bad_report_lines_name_the_file_and_line(tmp_path, capsys):
    from asha_hpc.job.job_report import read_report

    out = tmp_path / "report.jsonl"
    out.write_text('{torn\n\n[1]\n{"metrics": "0.3"}\n{"invalid_hp": "batch too large"}\n')
    got = read_report(out)
    err = capsys.readouterr().err.splitlines()
    assert err == [f"asha_hpc: {out}:1: not JSON, ignored",
                   f"asha_hpc: {out}:3: not a JSON object, ignored",
                   f'asha_hpc: {out}:4: "metrics" must be an object of name: value, ignored']
    assert got.invalid == "batch too large" and got.metrics == {}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=30), st.dictionaries(
    st.sampled_from(["metrics", "step", "reached", "invalid_hp", "saved", "ended_early",
                     "fatal", "other"]),
    st.one_of(st.integers(), st.floats(allow_nan=False), st.text(max_size=5),
              st.dictionaries(st.text(max_size=5), st.floats(allow_nan=False), max_size=3)),
    max_size=4).map(json.dumps)), max_size=8))
def test_any_report_file_is_read_without_raising(tmp_path_factory, lines):
    from asha_hpc.job.job_report import read_report

    out = tmp_path_factory.mktemp("r") / "report.jsonl"
    out.write_text("\n".join(line.replace("\n", " ") for line in lines) + "\n")
    got = read_report(out)
    assert got.metrics is None or isinstance(got.metrics, dict)
    assert got.reached is None or isinstance(got.reached, int)
    assert all(isinstance(m, dict) for _, m in got.points)
    assert all(v is None or isinstance(v, str) for v in (got.fatal, got.ended_early, got.invalid))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=20), st.dictionaries(
    st.sampled_from(["metrics", "step", "reached", "ended_early"]),
    st.one_of(st.integers(), st.text(max_size=4),
              st.dictionaries(st.text(max_size=4), st.integers(), max_size=2)),
    max_size=3).map(json.dumps)), max_size=8), st.lists(st.integers(0, 400), max_size=6))
def test_reading_as_the_file_grows_gives_what_one_read_at_the_end_gives(tmp_path_factory,
                                                                        lines, cuts):
    """The job reads a command's report file while the command writes it (ReportReader):
    whatever the points at which it looks, even in the middle of a line or of a UTF-8
    character, it ends with the same result and the same points, each once."""
    from asha_hpc.job.job_report import ReportReader, read_report

    data = ("\n".join(line.replace("\n", " ") for line in lines)).encode()
    out = tmp_path_factory.mktemp("r") / "report.jsonl"
    out.write_bytes(b"")
    reader, seen, at = ReportReader(out), [], 0
    for cut in sorted(min(c, len(data)) for c in cuts):
        with open(out, "ab") as f:
            f.write(data[at:cut])
        at = max(at, cut)
        seen += reader.read()
    with open(out, "ab") as f:
        f.write(data[at:])
    seen += reader.read(final=True)
    whole = read_report(out)
    assert seen == whole.points and reader.got.points == whole.points
    assert reader.got.metrics == whole.metrics and reader.got.reached == whole.reached


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=0, max_size=12), st.sets(st.sampled_from(["ckpt-1", "ckpt-2", "model.pt", "a b"])))
@example(".", set()).via("the whole folder")
@example("..", set()).via("outside the folder")
@example("./ckpt-1", {"ckpt-1"}).via("a path, not an entry name")
def test_any_saved_name_is_kept_only_when_it_is_an_entry_of_the_folder(tmp_path_factory, name, there):
    """``--saved NAME`` as a command passes it (any text): taken (exit 0, one line in the
    report) only where NAME is an entry directly in $ASHA_CHECKPOINT_DIR, or ``.`` (the whole
    folder); else exit 2 with one message, and nothing reported."""
    from asha_hpc.job.job_report import WHOLE_FOLDER, main, read_report

    root = tmp_path_factory.mktemp("r")
    ckpt = root / "ckpt"
    ckpt.mkdir()
    for entry in there:
        (ckpt / entry).write_text("x")
    out = root / "report.jsonl"
    os.environ.update(ASHA_REPORT_FILE=str(out), ASHA_CHECKPOINT_DIR=str(ckpt))
    try:
        try:
            code = main(["--saved", name])
        except SystemExit as e:  # argparse's own refusal ("-x" reads as an option): its usage line
            code = e.code
    finally:
        del os.environ["ASHA_REPORT_FILE"], os.environ["ASHA_CHECKPOINT_DIR"]
    if name in there or name == WHOLE_FOLDER:
        assert code == 0 and read_report(out).saved == name
    else:
        assert code == 2 and not out.exists()


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c,
                                                                         max_size=3),
                    max_leaves=8))
def test_any_warning_line_is_read_as_text_beside_the_metrics(tmp_path_factory, said):
    """A command's callback writes {"warning": ...}; whatever a script writes under that key
    is kept as text for the master and changes nothing else the job reads."""
    from asha_hpc.job.job_report import read_report

    out = tmp_path_factory.mktemp("r") / "report.jsonl"
    out.write_text(json.dumps({"warning": said}) + "\n" + json.dumps({"metrics": {"loss": 1.5}})
                   + "\n")
    got = read_report(out)
    assert got.warnings == [str(said)] and got.metrics == {"loss": 1.5}
    assert got.invalid is None and got.ended_early is None and got.fatal is None

