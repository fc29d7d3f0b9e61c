"""A journal pins the config its trials mean (searcher, hyperparameters, seed); a resume with a
changed experiment.yaml is refused, naming the settings that changed."""
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asha_hpc.errors import AshaError
from asha_hpc.master.state import config_hash, config_pin, describe_changes, replay
from asha_hpc.protocol.records import Init

from helpers import sim_cfg

JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
                    | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=12)


@given(st.dictionaries(st.text(max_size=6), JSON, max_size=4),
       st.dictionaries(st.text(max_size=6), JSON, max_size=4))
def test_any_two_configs_that_differ_are_told_apart_by_name(was, now):
    said = describe_changes(was, now)
    if was == now:
        return
    assert said and said != "changed"
    first = said.split("; ")[0].split(": ")[0]
    keys = first.split(".")  # a dotted name whose first part is a key of either config
    assert any(k.startswith(keys[0]) or keys[0].startswith(k) for k in set(was) | set(now))


def test_a_journal_names_what_changed_and_an_older_ones_does_not():
    cfg = sim_cfg(trials=4)
    init = Init(seed=cfg.experiment_seed, config_hash=config_hash(cfg), pinned=config_pin(cfg))
    rec = dict(init.to_record(), seq=1)
    assert json.loads(json.dumps(rec)) == rec  # the journal can keep it
    changed = sim_cfg(trials=9)
    with pytest.raises(AshaError, match=r"searcher\.max_trials: 4 then, 9 now"):
        replay(changed, [rec])
    older = {k: v for k, v in rec.items() if k != "pinned"}
    with pytest.raises(AshaError, match="searcher or hyperparameters changed"):
        replay(changed, [older])
    assert replay(cfg, [rec]).lifecycle == "running"
