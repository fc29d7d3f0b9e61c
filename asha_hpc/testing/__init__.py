"""Test support shipped with the package: ``try_trial`` runs a user's training function for one
trial in this process, as a search would (a notebook's smoke test: does a promoted trial go on
from its checkpoint as if never stopped?); the tests and benchmarks/chaos.py use the rest (a
user's own fault-injection runs may too): ``invariants.check_invariants`` checks a journal
whatever crashed when, ``chaos.run_chaos`` kills a master at failpoints on the simulated
backend and resumes it. Nothing in the master or the jobs imports it."""
from .try_trial import try_trial

__all__ = ["try_trial"]
