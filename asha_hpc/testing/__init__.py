"""Test support shipped with the package (the tests and benchmarks/chaos.py use it; a user's
own fault-injection runs may too): ``invariants.check_invariants`` checks a journal whatever
crashed when, ``chaos.run_chaos`` kills a master at failpoints on the simulated backend and
resumes it. Nothing in the master or the jobs imports it."""
