"""A command entrypoint's placeholders, filled by the job for each segment: what the master
checks when it loads the config and what the job puts in the command's arguments.

    command: [python3, run_clf.py, "${args}", --max_steps, "${ASHA_MAX_LENGTH}",
              --output_dir, "${ASHA_CHECKPOINT_DIR}", --learning_rate, "${hparams.lr}"]

``${hparams.NAME}`` is one hyperparameter's value (dotted for nested ones); ``${args}``, an
argument of its own, becomes ``--NAME=VALUE`` for every hyperparameter (W&B sweeps' form, which
``argparse`` and ``HfArgumentParser`` read); ``${overrides}``, the same as ``NAME=VALUE`` in
Hydra's override grammar (``optimizer.lr=0.001``, ``name='a b'``, ``layers=[64,32]``,
``dropout=null``); ``${ASHA_...}`` is one of the job's variables (for
scripts that read flags, not the environment); ``$${`` is a literal ``${``; any other ``$``
or ``${NAME}`` is left as it is (a ``sh -c`` line's own variables, and a shell expansion of a
job variable: ``${ASHA_LATEST_CHECKPOINT:+--ckpt_path ...}``). Values are written as Python
writes them (``0.001``, ``True``, ``adam``); lists and maps as JSON.
"""
from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from ..space import flat_hparams

# what the job sets for a command (job/jobmain.py's _run_command), for ${ASHA_...}
VARIABLES = ("ASHA_HPARAMS", "ASHA_HPARAMS_FILE", "ASHA_TARGET_LENGTH", "ASHA_LATEST_CHECKPOINT",
             "ASHA_CHECKPOINT_DIR", "ASHA_REPORT_FILE", "ASHA_STOP_FILE", "ASHA_TRIAL_ID",
             "ASHA_TRIAL_SEED",
             "ASHA_TRIAL_DIR", "ASHA_RUN_DIR", "ASHA_SEGMENT", "ASHA_METRIC",
             "ASHA_LENGTH_UNIT", "ASHA_MAX_LENGTH", "ASHA_EXP_DIR", "ASHA_FREE_PORT")
ARGS = "${args}"
OVERRIDES = "${overrides}"
LISTS = {"args": "one --NAME=VALUE argument", "overrides": "one NAME=VALUE override (Hydra's)"}
_PLACEHOLDER = re.compile(r"\$\$\{|\$\{([^}]*)\}")
# what is left of one of ours once the complete placeholders are taken out: its '}' is missing
_UNCLOSED = re.compile(r"\$\{(?:hparams\.|ASHA_|args|overrides).*", re.S)
# W&B Sweeps' command macros, which a sweep's command moved here would keep
_WANDB_MACROS = {
    "env": "leave it out (the command runs as given)",
    "interpreter": "write the interpreter (python3)", "program": "write the script (train.py)",
    "args_no_hyphens": "use ${overrides} (NAME=VALUE each)",
    "args_json": "read $ASHA_HPARAMS (the values as JSON)",
    "args_json_file": "read the file $ASHA_HPARAMS_FILE names",
    "args_no_boolean_flags": "use ${args} (--NAME=True/False)",
}
_FLAG = re.compile(r"--([A-Za-z_][\w.\-]*)(?:=.*)?", re.S)


def problems(command: Sequence[str], names: Sequence[str] | None) -> list[str]:
    """What is wrong with the placeholders of ``command``, given the dotted names of the
    search space's hyperparameters (None: a space with problems of its own, whose names are
    not checked): one line each, naming the argument."""
    out = []
    known = set(names or ())
    for i, arg in enumerate(command):
        for m in _PLACEHOLDER.finditer(arg):
            name = m.group(1)
            if name is None:  # $${
                continue
            if name in LISTS:
                if arg != f"${{{name}}}":
                    out.append(f"command[{i}] {arg!r}: ${{{name}}} must be an argument of its "
                               f"own (it becomes {LISTS[name]} per hyperparameter)")
            elif name.startswith("hparams.") and names is not None:
                hp = name[len("hparams."):]
                if hp not in known:
                    out.append(f"command[{i}] {arg!r}: no hyperparameter '{hp}'"
                               + (f" (there are: {', '.join(sorted(known))})" if known else
                                  " (the config has none)"))
            elif name in _WANDB_MACROS:
                out.append(f"command[{i}] {arg!r}: W&B Sweeps' ${{{name}}} is not filled here: "
                           f"{_WANDB_MACROS[name]}")
            elif re.fullmatch(r"ASHA_\w*", name) and name not in VARIABLES:
                # (an expansion with an operator, ${ASHA_LATEST_CHECKPOINT:+...}, is the shell's)
                out.append(f"command[{i}] {arg!r}: ${{{name}}} is none of the job's variables: "
                           f"{', '.join(VARIABLES)}")
        unclosed = _UNCLOSED.search(_PLACEHOLDER.sub("", arg))
        if unclosed:  # passed on as it is, the script would get the text, not the value
            out.append(f"command[{i}] {arg!r}: {unclosed.group(0)!r} has no closing '}}' "
                       f"(a placeholder is ${{NAME}}; $${{ is a literal ${{)")
    return out


def warnings(command: Sequence[str], names: Sequence[str]) -> list[str]:
    """A literal flag that ``${args}`` passes too (W&B's ``epochs: {value: 27}`` kept beside
    ``--epochs=${ASHA_TARGET_LENGTH}``): the script's parser keeps one of the two, which
    depends on their order, without a word."""
    if ARGS not in command:
        return []
    known = {n.replace("-", "_") for n in names}
    out = []
    for i, arg in enumerate(command):
        m = _FLAG.fullmatch(arg)
        if m is not None and m.group(1).replace("-", "_") in known:
            fix = ("drop the hyperparameter: the flag gives each segment its length"
                   if "${ASHA_" in arg else "drop the hyperparameter or the flag")
            out.append(f"command[{i}] {arg!r}: ${{args}} passes --{m.group(1)} too (a "
                       f"hyperparameter), and the script's parser keeps one of the two "
                       f"(argparse: the last): {fix}")
    return out


def value_text(v: Any) -> str:
    return json.dumps(v) if isinstance(v, (list, dict)) else str(v)


# an unquoted string in Hydra's grammar that reads back as that string (not a number, a bool,
# null, an interpolation or a sweep)
_HYDRA_PLAIN = re.compile(r"[A-Za-z_/][\w/\-+.:@]*", re.ASCII)
_HYDRA_WORDS = {"true", "false", "null", "nan", "inf"}


def hydra_value(v: Any) -> str:
    """``v`` as a value of Hydra's override grammar that Hydra reads back as ``v``."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v) if v == v and v not in (float("inf"), float("-inf")) else \
            {"nan": "nan", "inf": "inf", "-inf": "-inf"}[str(v)]
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(hydra_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ",".join(f"{hydra_key(k)}:{hydra_value(x)}" for k, x in v.items()) + "}"
    s = str(v)
    if _HYDRA_PLAIN.fullmatch(s) and s.lower() not in _HYDRA_WORDS:
        return s
    # in Hydra's quoted strings a backslash is itself, except in a run before a quote or at
    # the end, where each stands for half as many
    s = re.sub(r"(\\*)'", lambda m: m.group(1) * 2 + "\\'", s)
    return "'" + re.sub(r"(\\+)$", lambda m: m.group(1) * 2, s) + "'"


def hydra_key(k: Any) -> str:
    return str(k) if _HYDRA_PLAIN.fullmatch(str(k)) else hydra_value(str(k))


def fill(command: Sequence[str], hparams: Mapping[str, Any], env: Mapping[str, str]) -> list[str]:
    """``command`` with its placeholders filled (checked when the config was loaded)."""
    flat = flat_hparams(dict(hparams), keep_empty=True)
    out: list[str] = []
    for arg in command:
        if arg == ARGS:
            out += [f"--{k}={value_text(v)}" for k, v in flat.items()]
            continue
        if arg == OVERRIDES:
            out += [f"{k}={hydra_value(v)}" for k, v in flat.items()]
            continue

        def one(m: re.Match[str]) -> str:
            name = m.group(1)
            if name is None:  # $${
                return "${"
            if name.startswith("hparams."):
                return value_text(flat[name[len("hparams."):]])
            return env[name] if name in VARIABLES else m.group(0)  # the shell's own

        out.append(_PLACEHOLDER.sub(one, arg))
    return out
