"""What a Slurm pending reason means (backends/slurm_reasons.py), and the job lists the log and
status build from them (backends/base.py)."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asha_hpc.backends.base import LIMIT, STUCK, WAITS, for_jobs, jobs_text
from asha_hpc.backends.slurm import (
    no_node_sbatch_error,
    too_many_sbatch_error,
    transient_sbatch_error,
)
from asha_hpc.backends.slurm_reasons import classify


@pytest.mark.parametrize("reason, kind, words", [
    ("Priority", WAITS, "other jobs come first"),
    ("Resources", WAITS, "nodes to free up"),
    ("None", WAITS, "not scheduled yet"),
    ("", WAITS, "not scheduled yet"),
    ("ReqNodeNotAvail, Reserved for maintenance", WAITS, "maintenance"),
    ("Nodes_required_for_job_are_DOWN,_DRAINED_or_reserved_for_jobs_in_higher_priority_partitions",
     WAITS, "down, drained"),
    ("AssocGrpGRES", LIMIT, "your association has reached its limit on GPUs (GRES)"),
    ("QOSGrpCpuLimit", LIMIT, "its QOS has reached its limit on CPUs"),
    ("AssocGrpCPURunMinutesLimit", LIMIT, "limit on CPUs"),
    ("QOSMaxGRESPerUser", LIMIT, "starts as other jobs end"),
    ("QOSMaxJobsPerUserLimit", LIMIT, "starts as other jobs end"),
    ("AssocMaxJobsLimit", LIMIT, "limit on jobs"),
    ("JobArrayTaskLimit", LIMIT, "as many tasks at once"),
    ("QOSMaxWallDurationPerJobLimit", STUCK, "more time than its QOS allows per job"),
    ("AssocMaxWallDurationPerJobLimit", STUCK, "more time than your association allows"),
    ("QOSMaxGRESPerJob", STUCK, "more GPUs (GRES) than its QOS allows per job"),
    ("QOSMaxNodePerJobLimit", STUCK, "more nodes"),
    ("QOSMaxCpuPerNode", STUCK, "more CPUs"),
    ("QOSMinGRES", STUCK, "asks for GPUs (GRES) below its QOS's minimum"),
    ("PartitionTimeLimit", STUCK, "slurm.timeout_min"),
    ("BadConstraints", STUCK, "slurm.constraint"),
    ("InvalidQOS", STUCK, "slurm.qos"),
    ("JobHeldUser", STUCK, "`scontrol release 17_3` lets it start"),
    ("JobHeldAdmin", STUCK, "administrator"),
    ("launch failed requeued held", STUCK, "administrator"),
    ("SomethingNewInSlurm99", WAITS, "Slurm's reason: SomethingNewInSlurm99"),
])
def test_a_reason_is_told_as_what_it_means(reason, kind, words):
    p = classify(reason, "17_3")
    assert p.kind == kind and words in p.means, p


@settings(max_examples=500)
@given(reason=st.text(max_size=60), job=st.from_regex(r"[0-9]{1,7}(_[0-9]{1,4})?", fullmatch=True))
def test_any_reason_is_one_of_three_kinds_and_never_raises(reason, job):
    p = classify(reason, job)
    assert p.kind in (WAITS, LIMIT, STUCK) and p.means and "{job}" not in p.means
    assert p.reason == (reason.strip() or "None")


def test_a_command_in_what_it_means_names_every_job_pending_for_it():
    means = classify("JobHeldUser", "12_1").means
    assert for_jobs(means, "12_1", ["12_1", "12_10", "12_2"]).endswith(
        "`scontrol release 12_1 12_10 12_2` lets it start")
    assert for_jobs(means, "12_1", ["12_1"]) == means
    other = classify("PartitionTimeLimit", "1").means  # no command: unchanged
    assert for_jobs(other, "1", ["1", "2"]) == other


def test_jobs_are_named_with_their_trials_and_counted_past_ten():
    trials = {"5_0": [1], "5_1": [2, 3]}
    assert jobs_text(["5_0"], trials) == "job 5_0 (trial 1)"
    assert jobs_text(["5_0", "5_1", "9"], trials) == \
        "3 jobs: 5_0 (trial 1), 5_1 (trial 2, trial 3), 9 (warm workers)"
    many = [str(i) for i in range(13)]
    assert jobs_text(many, {}).endswith(", 9 (warm workers), and 3 more")


@pytest.mark.parametrize("stderr, transient", [
    ("sbatch: error: Batch job submission failed: Unable to contact slurm controller "
     "(connect failure)", True),
    ("sbatch: error: Batch job submission failed: Socket timed out on send/recv operation", True),
    ("sbatch: error: Slurm temporarily unable to accept job, sleeping and retrying", True),
    ("sbatch: error: Batch job submission failed: Zero Bytes were transmitted or received", True),
    ("sbatch: error: QOSMaxSubmitJobPerUserLimit\nsbatch: error: Batch job submission failed: "
     "Job violates accounting/QOS policy (job submit limit, user's size and/or time limits)", True),
    ("sbatch: error: Batch job submission failed: Invalid partition name specified", False),
    ("sbatch: error: Batch job submission failed: Invalid account or account/partition "
     "combination specified", False),
    ("sbatch: error: Batch job submission failed: Requested node configuration is not "
     "available", False),
    ("sbatch: error: Invalid generic resource (gres) specification", False),
    ("sbatch: error: Batch job submission failed: Invalid qos specification", False),
    ("sbatch: error: Batch job submission failed: Job violates accounting/QOS policy (job submit "
     "limit, user's size and/or time limits)", False),  # which limit is not said: a person looks
])
def test_an_sbatch_error_is_transient_only_where_the_scheduler_could_not_take_a_job_now(
        stderr, transient):
    assert transient_sbatch_error(stderr) is transient


@settings(max_examples=300)
@given(st.text(max_size=200))
def test_any_sbatch_error_text_is_told_without_raising(text):
    assert transient_sbatch_error(text) in (True, False)


@pytest.mark.parametrize("reason", ["PartitionTimeLimit", "QOSMaxWallDurationPerJobLimit",
                                    "AssocMaxWallDurationPerJobLimit"])
def test_a_job_that_asks_for_too_long_a_time_limit_is_told_apart(reason):
    p = classify(reason)
    assert p.too_long and p.kind == STUCK


@pytest.mark.parametrize("reason", ["Priority", "QOSGrpWallLimit", "AssocGrpWall",
                                    "QOSMaxNodePerJobLimit", "JobHeldUser", "PartitionNodeLimit"])
def test_other_reasons_are_not_a_time_limit_to_fix(reason):
    assert not classify(reason).too_long


@pytest.mark.parametrize("stderr, too_many", [
    ("sbatch: error: QOSMaxSubmitJobPerUserLimit\nsbatch: error: Batch job submission failed: "
     "Job violates accounting/QOS policy (job submit limit, user's size and/or time limits)", True),
    ("sbatch: error: AssocMaxSubmitJobLimit", True),
    ("sbatch: error: QOSGrpSubmitJobsLimit", True),
    ("sbatch: error: Batch job submission failed: Unable to contact slurm controller", False),
    ("sbatch: error: QOSMaxWallDurationPerJobLimit\nsbatch: error: Batch job submission failed: "
     "Job violates accounting/QOS policy (job submit limit, user's size and/or time limits)", False),
])
def test_a_limit_on_jobs_at_once_is_told_apart(stderr, too_many):
    assert too_many_sbatch_error(stderr) is too_many
    assert not too_many or transient_sbatch_error(stderr)


@pytest.mark.parametrize("stderr, no_node", [
    ("sbatch: error: Batch job submission failed: Requested node configuration is not "
     "available", True),
    ("sbatch: error: Batch job submission failed: Invalid node name specified", True),
    ("sbatch: error: Batch job submission failed: Invalid partition name specified", False),
    ("sbatch: error: Batch job submission failed: Unable to contact slurm controller", False),
])
def test_a_job_no_node_can_take_is_told_apart(stderr, no_node):
    """What the master's exclusions may cause (master/nodes.py): such jobs then go to any node."""
    assert no_node_sbatch_error(stderr) is no_node
    assert not (no_node and transient_sbatch_error(stderr))


def test_sbatch_refusals_name_the_config_key_that_sets_the_option():
    from asha_hpc.backends.slurm import sbatch_error_field

    said = {
        "sbatch: error: invalid partition specified: nope": "slurm.partition",
        "sbatch: error: Invalid feature specification": "slurm.constraint",
        "sbatch: error: Invalid account or account/partition combination specified":
            "slurm.account",
        "sbatch: error: Invalid qos specification": "slurm.qos",
        "sbatch: error: Invalid generic resource (gres) specification": "slurm.gpus_per_node",
        "sbatch: error: Memory specification can not be satisfied": "slurm.mem_gb",
        "sbatch: unrecognized option '--nonsense-option=3'": "slurm.additional_parameters",
        "sbatch: error: Batch job submission failed: Socket timed out": None,
    }
    assert {text: sbatch_error_field(text) for text in said} == said
