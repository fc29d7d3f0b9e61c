"""Experiment config: YAML -> validated dataclasses.  (work in progress: SearcherConfig is final)"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional


@dataclass
class SearcherConfig:
    """The ``searcher`` section, Determined-compatible keys, defaults as in the spec."""

    name: str = "adaptive_asha"  # adaptive_asha | async_halving | random | grid | single
    metric: str = ""
    smaller_is_better: bool = True
    max_length: int = 1
    length_unit: str = "units"  # batches | epochs | records | units (display only)
    max_trials: int = 1
    max_concurrent_trials: int = 16
    mode: str = "standard"  # aggressive | standard | conservative
    divisor: float = 4.0
    max_rungs: int = 5
    bracket_rungs: Optional[List[int]] = None
    num_rungs: int = 5  # async_halving only
    stop_once: bool = False
