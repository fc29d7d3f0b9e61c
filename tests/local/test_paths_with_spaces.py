"""An experiment folder whose path holds spaces and quotes (``~/My Runs/lr sweep (it's)``):
the commands that asha-hpc's messages tell a person to run work when pasted into a shell."""
from __future__ import annotations

import re
import shlex
import subprocess
import sys

from hypothesis import given, settings
from hypothesis import strategies as st

from asha_hpc.errors import shell_word

from helpers import cli, make_experiment


def _suggested(text: str) -> list[str]:
    """The `asha-hpc ...` commands quoted in backticks in ``text``."""
    return re.findall(r"`(asha-hpc [^`]+)`", text)


def _paste(command: str) -> subprocess.CompletedProcess:
    """``command`` as a person pastes it into bash (asha-hpc: this interpreter's CLI)."""
    exe = shlex.quote(sys.executable)
    return subprocess.run(["bash", "-c", f"asha-hpc() {{ {exe} -m asha_hpc.cli \"$@\"; }}; {command}"],
                          capture_output=True, text=True)


def test_the_commands_messages_suggest_work_pasted_into_a_shell(tmp_path):
    cfg = make_experiment(tmp_path, searcher={"max_trials": 2})
    exp = tmp_path / "My Runs" / "lr sweep (it's) $HOME"
    r = cli("run", cfg, "--exp-dir", exp)
    [see] = _suggested(r.stderr.splitlines()[-1])
    assert see == f"asha-hpc best {shell_word(exp)}"
    pasted = _paste(see)
    assert pasted.returncode == 0, pasted.stderr
    assert "trial" in pasted.stdout

    again = cli("run", cfg, "--exp-dir", exp, check=False)
    assert again.returncode == 1
    [resume] = _suggested(again.stderr)
    pasted = _paste(resume)
    assert pasted.returncode == 0 and "experiment already completed" in pasted.stderr, pasted.stderr


@settings(max_examples=300, deadline=None)
@given(path=st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                    min_size=1, max_size=40))
def test_a_path_in_a_suggested_command_is_one_shell_word(path):
    assert shlex.split(f"asha-hpc resume {shell_word(path)} --force") == \
        ["asha-hpc", "resume", path, "--force"]
