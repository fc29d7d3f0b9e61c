"""``python -m asha_hpc.report``: the name users call for ``asha_hpc.job.job_report`` (the command
entrypoint's metric reporter; the README and users' shell scripts use this one)."""
from __future__ import annotations

import sys

from .job.job_report import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
