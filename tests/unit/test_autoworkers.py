"""`plan`'s estimate of when warm workers pay off, in the words of the search's unit."""
from __future__ import annotations

import pytest


@pytest.mark.parametrize("unit,one", [("batches", "batch"), ("epochs", "epoch"),
                                      ("units", "unit"), ("minutes", "minute")])
def test_plans_estimate_names_one_unit_in_the_singular(unit, one):
    from asha_hpc.master.autoworkers import plan_estimate

    assert f"while one {one} trains in less than" in plan_estimate(56, 0.1, unit)
