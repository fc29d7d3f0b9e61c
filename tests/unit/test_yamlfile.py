"""yamlfile.py reads configs with YAML 1.2's numbers and writes them back: whatever it writes
(an experiment's resolved config, ``best --points``) reads back as it was, text that looks like
a number included; and an earlier release's text, quoted by the upgrade, reads as it did."""
import math

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from asha_hpc.yamlfile import keep_yaml11_text, read_yaml, write_yaml

NUMBERISH = st.sampled_from(["1e-4", "5E3", "+1e5", "-2.5e-3", ".5e1", "1_000", "0x1F", "1:30",
                             "yes", "off", "null", "~", "1.0", "inf", ".nan", "2026-12-06",
                             "1e", "e5", "1e-4a", "0o17", "0b101"])
SCALAR = (st.none() | st.booleans() | st.integers(-10**12, 10**12)
          | st.floats(allow_nan=False, allow_infinity=False) | NUMBERISH | st.text(max_size=12))
DATA = st.recursive(SCALAR, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(min_size=1, max_size=8) | NUMBERISH, inner,
                                      max_size=4), max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(DATA)
def test_what_is_written_reads_back_as_it_was(data):
    back = read_yaml(write_yaml(data, sort_keys=False))
    assert back == data or _same_floats(back, data)


@settings(max_examples=300, deadline=None)
@given(DATA)
def test_an_earlier_releases_text_keeps_its_values_once_quoted(data):
    """What PyYAML (YAML 1.1) read from a file, this release reads the same from the file the
    upgrade quoted."""
    text = yaml.safe_dump(data, sort_keys=False)
    before = yaml.safe_load(text)
    assert read_yaml(keep_yaml11_text(text)) == before or \
        _same_floats(read_yaml(keep_yaml11_text(text)), before)
    assert read_yaml(text, yaml11=True) == before or _same_floats(read_yaml(text, yaml11=True),
                                                                  before)


def _same_floats(a, b):
    """Equal but for a float that is -0.0 against 0.0 (YAML writes both as 0.0)."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_floats(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same_floats(x, y) for x, y in zip(a, b))
    return a == b
