"""The longest time limit a job may ask for (backends/slurm_limits.py), from what sacctmgr and
scontrol print: Slurm's order (partition QOS, job QOS, association; bounded by the partition's
MaxTime unless the QOS says otherwise), and any text parsed without an exception."""
from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from asha_hpc.backends.base import TimeCap
from asha_hpc.backends.slurm_limits import (
    AccountingLimits,
    Assoc,
    Qos,
    enforces_limits,
    job_qos,
    parse_assocs,
    parse_partition_qos,
    parse_qos,
    time_cap,
)

QOS_OUT = """normal||
debug|00:30:00|DenyOnLimit
long|7-00:00:00|PartitionTimeLimit
gpu_short|04:00:00|OverPartQOS
part_gpu|1-00:00:00|
"""
ASSOC_OUT = """lab|||normal,debug|normal,debug
lab|gpu|12:00:00||normal
other||02:00:00|debug|debug
"""
PARTITIONS_OUT = (
    "PartitionName=cpu AllowGroups=ALL Default=YES QoS=N/A MaxTime=UNLIMITED State=UP\n"
    "PartitionName=gpu AllowGroups=ALL Default=NO QoS=part_gpu MaxTime=2-00:00:00 State=UP\n")


def limits() -> AccountingLimits:
    return AccountingLimits(qos=parse_qos(QOS_OUT), assocs=parse_assocs(ASSOC_OUT),
                            default_account="lab", partition_qos=parse_partition_qos(PARTITIONS_OUT))


def test_parses_what_sacctmgr_and_scontrol_print():
    q = parse_qos(QOS_OUT)
    assert q["normal"] == Qos("normal", None) and q["debug"].max_wall == 30
    assert q["long"].max_wall == 7 * 24 * 60 and q["long"].flags == {"partitiontimelimit"}
    a = parse_assocs(ASSOC_OUT)
    assert a[1] == Assoc("lab", "gpu", 12 * 60, "", ("normal",))
    assert a[0].qos == ("normal", "debug") and a[2].default_qos == "debug"
    assert parse_partition_qos(PARTITIONS_OUT) == {"gpu": "part_gpu"}


def test_enforcement_is_read_from_the_config():
    assert enforces_limits("AccountingStorageEnforce = associations,limits\nX = 1\n")
    assert enforces_limits("AccountingStorageEnforce = safe")
    assert not enforces_limits("AccountingStorageEnforce = associations")
    assert not enforces_limits("AccountingStorageEnforce = none")
    assert not enforces_limits("MaxArraySize = 1001\n")


def test_the_partition_alone_without_enforced_accounting():
    assert time_cap("short", 10) == TimeCap(10, "partition short MaxTime")
    assert time_cap("cpu", None, qos="debug") == TimeCap(None)


def test_a_qos_maxwall_below_maxtime_caps():
    cap = time_cap("cpu", None, qos="debug", accounting=limits())
    assert cap == TimeCap(30, "QOS debug MaxWall")
    assert time_cap("cpu", 20, qos="DEBUG", accounting=limits()) == \
        TimeCap(20, "partition cpu MaxTime")  # the partition's is shorter; names without case


def test_the_partition_qos_comes_before_the_jobs_unless_overpartqos():
    acc = limits()
    assert time_cap("gpu", 2880, qos="debug", accounting=acc) == TimeCap(1440, "QOS part_gpu MaxWall")
    assert time_cap("gpu", 2880, qos="gpu_short", accounting=acc) == \
        TimeCap(240, "QOS gpu_short MaxWall")


def test_partitiontimelimit_lets_a_qos_go_past_maxtime():
    assert time_cap("cpu", 60, qos="long", accounting=limits()) == TimeCap(10080, "QOS long MaxWall")


def test_the_association_when_no_qos_sets_a_maxwall():
    acc = limits()
    # default account lab; its gpu row holds for the gpu partition... after the partition QOS
    assert time_cap("gpu", None, accounting=acc).source == "QOS part_gpu MaxWall"
    acc.partition_qos.clear()
    assert time_cap("gpu", None, accounting=acc) == \
        TimeCap(720, "association (account lab partition gpu) MaxWall")
    assert time_cap("cpu", None, accounting=acc) == TimeCap(None)  # lab's row: no MaxWall
    # account other: default QOS debug (30 min) comes before the association (2 h)
    assert time_cap("cpu", None, account="Other", accounting=acc) == TimeCap(30, "QOS debug MaxWall")
    assert time_cap("cpu", None, account="other", qos="normal", accounting=acc) == \
        TimeCap(120, "association (account other) MaxWall")


def test_the_jobs_qos_when_none_is_asked_for():
    assert job_qos("Debug", None) == "debug"
    assert job_qos(None, Assoc("a", "", None, "debug", ("normal", "debug"))) == "debug"
    assert job_qos(None, Assoc("a", "", None, "", ("gpu",))) == "gpu"
    assert job_qos(None, Assoc("a", "", None, "", ("gpu", "cpu"))) == "normal"
    assert job_qos(None, None) == "normal"


names = st.sampled_from(["normal", "debug", "long", "gpu_short", "part_gpu", "nope", None])


@given(partition=st.sampled_from(["cpu", "gpu", "other", None]), max_time=st.none() | st.integers(1, 10**5),
       qos=names, account=st.sampled_from(["lab", "other", "gone", None]))
def test_a_cap_is_never_above_maxtime_unless_a_qos_allows_it(partition, max_time, qos, account):
    cap = time_cap(partition, max_time, qos=qos, account=account, accounting=limits())
    if max_time is not None:
        assert cap.minutes is not None
        assert cap.minutes <= max_time or cap.source == "QOS long MaxWall"
    assert (cap.minutes is None) == (cap.source == "")


@given(st.text(max_size=300))
def test_any_text_parses_without_an_exception(text):
    parse_qos(text)
    parse_assocs(text)
    parse_partition_qos(text)
    enforces_limits(text)
