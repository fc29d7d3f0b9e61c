"""The time a master ran the search (status's throughput and ETA divide by it): a master that
stopped without its record (killed; its own write met a full disk and it waited for room) does
not count the time no master ran."""
from asha_hpc.views.status import active_seconds


def rec(kind, t):
    return {"kind": kind, "time": t}


def test_stopped_and_resumed_intervals_add_up():
    assert active_seconds([rec("init", 0), rec("result", 4), rec("stopped", 10),
                           rec("resumed", 20), rec("done", 30)]) == 20


def test_a_master_gone_without_its_record_ends_at_its_last_record():
    # the first master's last record at 5; the next resumed at 100 (the wait is not counted)
    records = [rec("init", 0), rec("result", 5), rec("resumed", 100), rec("result", 105),
               rec("done", 110)]
    assert active_seconds(records) == 15


def test_an_open_interval_runs_to_now_for_a_live_master():
    assert active_seconds([rec("init", 0), rec("result", 5)], now=50) == 50
    assert active_seconds([rec("init", 0), rec("result", 5)]) == 5
    assert active_seconds([rec("init", 0), rec("result", 5), rec("resumed", 40)], now=50) == 15
