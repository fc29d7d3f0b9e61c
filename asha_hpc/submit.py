"""``asha-hpc submit``: the master as a Slurm job, from ``sbatch_templates/master.sbatch``.

Values that land on ``#SBATCH`` lines must match a conservative pattern (sbatch does its own
parsing there, so quoting would not help); values on shell lines are shell-quoted. No config
value is ever interpolated into a shell command unquoted. The ``setup`` lines are shell code by
design (module loads, env activation) and are written as given.
"""
from __future__ import annotations

import os
import re
import shlex
import string
import subprocess
import sys
from pathlib import Path

from .config import ExperimentConfig
from .errors import AshaError
from .protocol.expdir import MASTER_JOB, MASTER_SCRIPT, atomic_write

TEMPLATE = Path(__file__).resolve().parent.parent / "sbatch_templates" / "master.sbatch"
_SAFE = re.compile(r"^[A-Za-z0-9_.:,=/@+%-]*$")
# the master's job gets SIGUSR2 this long before its time limit, stops cleanly and requeues
# itself (master.sbatch's --signal)
MASTER_SIGNAL_S = 120


def _directive(field: str, value: str) -> str:
    if not _SAFE.fullmatch(value):  # (match: "$" lets a trailing newline through)
        raise AshaError(f"{field}: {value!r} cannot go on an #SBATCH line (use letters, digits "
                        f"and _.:,=/@+%- only)")
    return value


def _template_text(template: Path | None) -> str:
    path = Path(template) if template else TEMPLATE
    try:
        return path.read_text()
    except OSError as e:
        raise AshaError(f"{path}: cannot read the master template ({e.strerror}); pass "
                        f"--template sbatch_templates/master.sbatch from a clone of asha_hpc") from None


def master_options(cfg: ExperimentConfig, account: str | None, qos: str | None,
                   sbatch: list[str]) -> dict[str, str]:
    """The master job's own sbatch options: ``--account`` (default: the trials',
    ``slurm.account``, which then pays for the master too), ``--qos``, and each ``--sbatch
    KEY=VALUE``."""
    extra: dict[str, str] = {}
    if account or cfg.slurm.account:
        extra["account"] = str(account or cfg.slurm.account)
    if qos:
        extra["qos"] = qos
    for opt in sbatch:
        key, eq, value = opt.partition("=")
        if not eq or not key.strip("-"):
            raise AshaError(f"--sbatch {opt!r}: write an sbatch option as KEY=VALUE "
                            f"(--sbatch mail-type=END)")
        extra[key.strip("-")] = value
    return extra


def render_master_script(cfg: ExperimentConfig, config_path: Path, exp_dir: Path,
                         partition: str | None = None, time_limit: str = "2-00:00:00",
                         mem: str = "4G", signal_s: int = MASTER_SIGNAL_S, template: Path | None = None,
                         extra: dict[str, str] | None = None, quiet: bool = False) -> str:
    """The master job's script: ``template`` (default ``TEMPLATE``) with its fields filled.
    ``quiet``: the master prints no progress line but its last, through the template's
    ``${quiet}`` field (a template without it is refused then: the flag would do nothing)."""
    source = _template_text(template)
    if quiet and "${quiet}" not in source:
        raise AshaError(f"--quiet: the template {template or TEMPLATE} has no ${{quiet}} field, "
                        f"so the master's job would print its progress line all the same: end "
                        f"its slurm-master line with ${{quiet}}, as {TEMPLATE.name} of this "
                        f"release does")
    fields = {
        "name": _directive("name", cfg.name),
        "partition": _directive("--partition", partition or ""),
        "time": _directive("--time", time_limit),
        "mem": _directive("--mem", mem),
        "signal_s": str(int(signal_s)),
        "exp_dir": _directive("--exp-dir", str(Path(exp_dir).resolve())),
        "extra_sbatch": "\n".join(f"#SBATCH --{_directive('option', k)}={_directive(k, str(v))}"
                                  for k, v in (extra or {}).items()),
        "setup": "\n".join(cfg.slurm.setup),
        "python": shlex.quote(sys.executable),
        "config": shlex.quote(str(Path(config_path).resolve())),
        "quiet": "--quiet" if quiet else "",
    }
    text = string.Template(source).safe_substitute(fields)
    if not partition:  # the cluster's default partition
        text = "\n".join(line for line in text.splitlines()
                         if not line.startswith("#SBATCH --partition=")) + "\n"
    return text


def submit_master(script: str, exp_dir: Path) -> str:
    """sbatch the script (written into the experiment folder); return the job id."""
    exp_dir = Path(exp_dir)
    made = not exp_dir.exists()
    exp_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = exp_dir / MASTER_SCRIPT
    path.write_text(script)

    def undo() -> None:  # a folder left with only the script would refuse a later `run`
        path.unlink(missing_ok=True)
        if made:
            try:
                exp_dir.rmdir()
            except OSError:
                pass

    try:
        r = subprocess.run(["sbatch", "--parsable", str(path)], capture_output=True, text=True,
                           timeout=60)
    except FileNotFoundError:
        undo()
        raise AshaError("sbatch not found: run this on a Slurm login node (or start the local "
                        "cluster: bash tools/local_slurm.sh start)") from None
    if r.returncode != 0:
        undo()
        raise AshaError(f"sbatch failed for the master's job: "
                        f"{r.stderr.strip() or r.stdout.strip()} (the script: `asha-hpc submit "
                        f"... --dry-run` prints it)")
    job = r.stdout.strip().split(";")[0]
    atomic_write(exp_dir / MASTER_JOB, f"{job}\n".encode())  # status names it before the master runs
    return job


def requeue_self() -> bool:
    """Inside a Slurm job: put this job back in the queue (the master's time limit is near)."""
    job = os.environ.get("SLURM_JOB_ID")
    if not job:
        return False
    r = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True)
    return r.returncode == 0


# the master's job is on its way to (or in) the experiment: `status` must not advise a second
WAITING_STATES = ("PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "CONFIGURING",
                  "RUNNING", "SUSPENDED", "RESIZING", "SIGNALING")


def master_job_waiting(root: Path) -> tuple[str, str, str] | None:
    """(job id, state, reason) of the master's job `submit` sent for the folder ``root``
    (``master.job``), while squeue has it queued, requeued or running; None otherwise, and
    where squeue cannot be asked (one call, 10 s at most)."""
    try:
        job = (Path(root) / MASTER_JOB).read_text().strip()
    except OSError:
        return None
    r = _squeue(job, "-o", "%T|%r")
    lines = r.stdout.strip().splitlines() if r is not None else []
    if r is None or r.returncode != 0 or not lines:
        return None
    state, _, reason = lines[0].partition("|")
    return (job, state, reason) if state in WAITING_STATES else None


def master_job_ended(job: str) -> str | None:
    """How the master's job ``job`` ended ("CANCELLED by 1000", "FAILED", ...) once the
    scheduler no longer has it queued or running; None while it does, or where neither squeue
    nor sacct can say (each one call, 10 s at most)."""
    import shutil

    q = _squeue(job, "-t", "all", "-o", "%T")
    if q is None:
        return None
    state = (q.stdout.strip().splitlines() or [""])[0]
    if q.returncode == 0 and state in WAITING_STATES:
        return None
    if q.returncode == 0 and state:  # still listed, ended (within the scheduler's MinJobAge)
        return state
    if "invalid job id" not in q.stderr.lower() and q.returncode != 0:
        return None  # the scheduler did not answer: nothing is known
    if shutil.which("sacct") is not None:  # gone from squeue: accounting keeps how it ended
        try:
            a = subprocess.run(["sacct", "-n", "-X", "-P", "-j", job, "-o", "State"],
                               capture_output=True, text=True, timeout=10)
            lines = a.stdout.strip().splitlines()
            if a.returncode == 0 and lines:
                return lines[0].strip()
        except (OSError, subprocess.SubprocessError):
            pass
    return "ENDED"


def _squeue(job: str, *args: str) -> subprocess.CompletedProcess[str] | None:
    """``squeue -h -j JOB ARGS`` (one call, 10 s at most); None for an id that is not one, or
    where squeue cannot be run."""
    import shutil

    if not job or not _SAFE.fullmatch(job) or shutil.which("squeue") is None:
        return None
    try:
        return subprocess.run(["squeue", "-h", "-j", job, *args], capture_output=True, text=True,
                              timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None

