"""The files between `resume --max-compute` / `--readmit-node` and a running master
(protocol/requests.py): any content in a cap request is a whole number and a token, or a
ValueError the master reports; a readmit request gives back the names it was given; an answer
names the request it answers by its token, and a torn or foreign one reads as none."""
from __future__ import annotations

import json

from hypothesis import example, given, settings
from hypothesis import strategies as st

from asha_hpc.protocol.expdir import ExpDir
from asha_hpc.protocol.requests import (
    Answer,
    CapAnswer,
    read_answer,
    read_cap_answer,
    read_cap_request,
    read_readmit_request,
    write_answer,
    write_cap_answer,
    write_cap_request,
    write_readmit_request,
)


def test_a_request_round_trips_and_the_answer_names_its_request(tmp_path):
    exp = ExpDir.create(tmp_path / "exp")
    first = write_cap_request(exp, 4000)
    req = read_cap_request(exp.max_compute_request)
    assert (req.units, req.token) == (4000, first)
    second = write_cap_request(exp, 5000)
    assert second != first and read_cap_request(exp.max_compute_request).units == 5000
    assert read_cap_answer(exp) is None  # no answer yet
    write_cap_answer(exp, CapAnswer(first, True, "max_compute raised from 10 to 4000 units"))
    assert read_cap_answer(exp) == CapAnswer(first, True,
                                             "max_compute raised from 10 to 4000 units")
    exp.max_compute_answer.write_text("{torn")  # never raises
    assert read_cap_answer(exp) is None
    exp.max_compute_answer.write_text(json.dumps({"token": first, "taken": "yes"}))
    assert read_cap_answer(exp) == CapAnswer(first, False, "")  # taken only if true
    exp.max_compute_answer.write_text(json.dumps({"token": 7, "taken": True}))
    assert read_cap_answer(exp) is None


@settings(max_examples=300, deadline=None)
@given(data=st.one_of(st.binary(max_size=40), st.text(max_size=40).map(str.encode),
                      st.integers(-10**20, 10**20).map(lambda n: f"{n}\n".encode())))
@example(data=b"0\r\x00")  # a lone carriage return is not a line break
def test_any_request_content_is_a_number_and_token_or_a_value_error(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("req") / "max_compute.request"
    path.write_bytes(data)
    try:
        req = read_cap_request(path)
    except ValueError:  # UnicodeDecodeError included: the master refuses it in one line
        return
    text = data.decode()
    assert req.units == int(text.strip().partition("\n")[0])
    assert req.token == text.strip().partition("\n")[2].strip()


# Slurm node names as sinfo prints them ("gpu17", "node-a100-03", "c1.cluster.local"), and
# whatever else a user types after --readmit-node that has no white space in it
NODE = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=30).filter(
    lambda name: not any(c.isspace() for c in name))


@settings(max_examples=200, deadline=None)
@given(nodes=st.lists(NODE, min_size=1, max_size=5))
@example(nodes=["gpu17", "node-a100-03", "c1.cluster.local"])
def test_a_readmit_request_names_the_nodes_it_was_given(tmp_path_factory, nodes):
    exp = ExpDir.create(tmp_path_factory.mktemp("req") / "exp")
    token = write_readmit_request(exp, nodes)
    assert read_readmit_request(exp.readmit_request) == (nodes, token)
    write_answer(exp.readmit_answer, Answer(token, True, f"node {nodes[0]} taken back"))
    assert read_answer(exp.readmit_answer) == Answer(token, True, f"node {nodes[0]} taken back")
