"""``slurm.additional_parameters`` go to sbatch last, so they would win over what asha_hpc
writes for every trial job: the SIGUSR2 warning before the time limit (Lightning's docs add
`--signal=SIGUSR1@90` for their own requeue), the time limit, the logs `asha-hpc logs` reads,
the job name the master finds jobs by, arrays. `signal` and `time` become the settings that
stand for them (signal_delay_s, timeout_min), as sbatch took them; the others are refused,
naming the field and what to set instead; a Determined config's sbatch_args are named as the
user wrote them. Everything else passes through untouched (hypothesis)."""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asha_hpc.config import parse_config
from asha_hpc.errors import ConfigError

OWNED = ("output", "error", "job_name", "array")  # refused
BECOME = ("time", "signal")  # become settings where they can


def config(slurm: dict) -> dict:
    return {"name": "s", "entrypoint": "m:f", "backend": "slurm",
            "searcher": {"name": "random", "metric": "m", "max_length": 4, "max_trials": 1},
            "hyperparameters": {"x": 1}, "slurm": slurm}


def spellings(key: str) -> list[str]:
    return sorted({key, key.replace("_", "-")})


@pytest.mark.parametrize("key,value,says", [
    ("signal", "USR1", "slurm.signal_delay_s sets it"),  # no time: nothing to become
    ("output", "/scratch/%j.out", "`asha-hpc logs`"),
    ("error", "slurm-%j.err", "`asha-hpc logs`"),
    ("job-name", "my-sweep", "finds them by that name"),
    ("array", "0-9%2", "as an array itself"),
])
def test_an_option_asha_hpc_writes_is_refused_with_what_to_set(key, value, says):
    with pytest.raises(ConfigError) as e:
        parse_config(config({"additional_parameters": {key: value, "mail-type": "END"}}), "/tmp")
    text = str(e.value)
    assert f"slurm.additional_parameters.{key}: asha_hpc sets sbatch's --{key.replace('_', '-')}" \
        in text and says in text, text
    assert "mail-type" not in text


def test_the_same_in_a_rungs_resources():
    with pytest.raises(ConfigError) as e:
        parse_config(config({"per_rung": [{"additional_parameters": {"signal": "USR1@60"}}]}),
                     "/tmp")
    assert "slurm.per_rung[0].additional_parameters.signal: " in str(e.value), str(e.value)


@pytest.mark.parametrize("value,seconds", [("SIGUSR1@90", 90), ("USR1@90", 90),
                                           ("B:USR2@120", 120), ("10@30", 30)])
def test_signal_becomes_signal_delay_s(value, seconds):
    """Lightning's `--signal=SIGUSR1@90` asked for a warning 90 s before the limit: every
    trial job gets one (SIGUSR2), and saves; no requeue by Lightning is needed."""
    cfg = parse_config(config({"signal_delay_s": 60, "timeout_min": 30,
                               "additional_parameters": {"signal": value}}), "/tmp")
    assert cfg.slurm.signal_delay_s == seconds and cfg.slurm.additional_parameters == {}
    assert any(w.startswith(f"slurm.additional_parameters.signal: slurm.signal_delay_s "
                            f"{seconds}, in place of signal_delay_s 60") for w in cfg.warnings)


def test_a_determined_configs_sbatch_args_are_named_as_written():
    raw = {**config({"sbatch_args": ["--mem=64G", "--signal=USR1@90", "--output=/s/%j.out"]}),
           "entrypoint": "python3 train.py"}
    with pytest.raises(ConfigError) as e:
        parse_config(raw, "/tmp")
    assert "slurm.sbatch_args: --output=/s/%j.out: asha_hpc sets sbatch's --output" in \
        str(e.value), str(e.value)
    assert "signal" not in str(e.value)  # it became signal_delay_s
    raw["slurm"]["sbatch_args"] = ["--mem=64G", "--signal=USR1@90"]
    cfg = parse_config(raw, "/tmp")
    assert cfg.slurm.signal_delay_s == 90 and cfg.slurm.additional_parameters == {"mem": "64G"}


@pytest.mark.parametrize("value,minutes", [("04:00:00", 240), ("90", 90), ("1-00", 1440),
                                           ("2-12:30", 3630), ("45:30", 45)])
def test_time_becomes_timeout_min(value, minutes):
    cfg = parse_config(config({"additional_parameters": {"time": value, "mem": "64G"}}), "/tmp")
    assert cfg.slurm.timeout_min == minutes
    assert cfg.slurm.additional_parameters == {"mem": "64G"}  # no --time of its own
    assert any(w.startswith(f"slurm.additional_parameters.time: slurm.timeout_min {minutes}")
               for w in cfg.warnings), cfg.warnings


def test_time_wins_over_timeout_min_as_it_did_at_sbatch():
    """A folder an earlier release wrote holds timeout_min (60 by default) beside a converted
    Determined config's --time, which sbatch took (it comes last): it resumes with that limit."""
    cfg = parse_config(config({"timeout_min": 60, "additional_parameters": {"time": "4:00:00"}}),
                       "/tmp")
    assert cfg.slurm.timeout_min == 240 and cfg.slurm.additional_parameters == {}
    assert "slurm.additional_parameters.time: slurm.timeout_min 240, in place of timeout_min 60" \
        in cfg.warnings[-1], cfg.warnings


@pytest.mark.parametrize("slurm", [{"timeout_min": "auto", "additional_parameters": {"time": "1:00:00"}},
                                   {"timeout_min_per_rung": [10, 60],
                                    "additional_parameters": {"time": "1:00:00"}},
                                   {"additional_parameters": {"time": "UNLIMITED"}},
                                   {"additional_parameters": {"time": "an hour"}}])
def test_time_that_cannot_be_timeout_min_is_refused(slurm):
    with pytest.raises(ConfigError) as e:
        parse_config(config(slurm), "/tmp")
    assert "slurm.additional_parameters.time: " in str(e.value)
    assert "slurm.timeout_min sets it" in str(e.value)


KEYS = st.one_of(st.sampled_from([s for k in OWNED + BECOME for s in spellings(k)]),
                 st.sampled_from(["mail-type", "mail_user", "gres", "mem_per_gpu", "requeue",
                                  "comment", "exclusive", "hold", "reservation"]),
                 st.text(min_size=1, max_size=12))
VALUES = st.one_of(st.text(max_size=12), st.integers(), st.booleans(),
                   st.sampled_from(["04:00:00", "USR1@90", "SIGUSR1@45", "END"]))


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(KEYS, VALUES, max_size=5))
def test_any_mapping_passes_through_or_is_refused_by_the_option_it_names(extra):
    refused = [k for k in extra if k.replace("-", "_") in OWNED]
    try:
        cfg = parse_config(config({"timeout_min": 600,
                                   "additional_parameters": dict(extra)}), "/tmp")
    except ConfigError as e:
        named = [k for k in extra if f"slurm.additional_parameters.{k}: " in str(e)]
        assert named, str(e)
        assert all(k.replace("-", "_") in OWNED + BECOME for k in named), str(e)
        assert set(refused) <= set(named)
        return
    assert not refused
    kept = cfg.slurm.additional_parameters
    # everything but what became a setting reaches sbatch as given
    assert {k: v for k, v in extra.items() if k.replace("-", "_") not in BECOME} == kept
