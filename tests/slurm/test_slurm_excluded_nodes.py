"""On the real local Slurm cluster: jobs that avoid a node the master excluded (master/nodes.py)
reach sbatch with ``--exclude``; where that leaves their partition no node (this cluster has
one), sbatch refuses them, and the master sends them to any node, says so once, and counts
nothing against the trials."""
from __future__ import annotations

import subprocess

import pytest

from asha_hpc.master.loop import Master

from slurm_helpers import exp_name, final_state, in_process, make_experiment, run_bounded

pytestmark = pytest.mark.slurm


class Excluding(Master):
    """A master that has excluded the cluster's only node, having seen another (as on a
    cluster of many whose other nodes are in other partitions)."""

    node = ""

    def start(self) -> bool:
        started = super().start()
        assert self.state is not None
        self.state.nodes.saw("elsewhere01")
        self.state.nodes.bad[self.node] = "excluded by the test"
        return started


@pytest.mark.parametrize("workers", [0, 1], ids=["segment jobs", "worker pool"])
def test_jobs_whose_partition_has_no_other_node_go_to_any_node(tmp_path, cleanup, workers):
    node = subprocess.run(["sinfo", "-h", "-o", "%N"], capture_output=True, text=True,
                          check=True).stdout.split()[0]
    cfg_path = make_experiment(
        tmp_path, f"excl{workers}", searcher={"name": "random", "max_trials": 2,
                                               "max_concurrent_trials": 2, "max_length": 2},
        slurm={"workers": workers})
    cleanup[0].append(exp_name(cfg_path))
    cfg, exp, backend = in_process(tmp_path, cfg_path)
    lines: list[str] = []
    Excluding.node = node
    st = run_bounded(Excluding(exp, cfg, backend=backend, progress=lines.append))
    assert st.lifecycle == "completed", (st.message, lines)
    said = [s for s in lines if s.startswith("the scheduler has no node for a job that avoids")]
    assert said == [f"the scheduler has no node for a job that avoids {node} (none other left "
                    f"in its partition?): such jobs go to any node"], lines
    _, st, recs = final_state(exp.root)
    assert all(t.status == "completed" and t.restarts == 0 and t.infra_retries == 0
               for t in st.trials.values())
    # jobs name their node as Slurm does (SLURMD_NODENAME): what --exclude takes
    assert {r["host"] for r in recs if r["kind"] == "result"} == {node}
    refused = [r for r in recs if r["kind"] == "submit_failed"]
    if workers == 0:
        assert refused and all(r["transient"] for r in refused)
        assert all("Requested node configuration is not available" in r["error"]
                   for r in refused)
    else:
        gone = [r for r in recs if r["kind"] == "worker_gone"]
        assert gone and "Requested node configuration is not available" in gone[0]["why"]
