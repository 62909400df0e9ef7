"""Decoupled models: responses through the sender, from other threads, after execute returns."""

from __future__ import annotations

import numpy as np
import pytest

from tritonlite.errors import InternalError
from pybackend_harness import load, MODELS, make_request  # noqa: F401 (load is a fixture)


def test_repeat_sends_n_responses_then_final(load):
    inst = load("repeat")
    assert inst.decoupled is True
    pairs = [make_request({"IN": np.array(v, np.int32)}, ("OUT", "IDX")) for v in ([4, 5, 6], [9])]
    assert inst.execute([p[0] for p in pairs]) is None
    for values, (_, col) in zip(([4, 5, 6], [9]), pairs):
        items = col.wait()
        assert [final for _, _, final in items] == [False] * len(values) + [True]
        assert items[-1][0] is None and all(err is None for _, err, _ in items)
        outs = [r.outputs for r, _, _ in items[:-1]]
        assert [o["OUT"].tolist() for o in outs] == [[v] for v in values]
        assert [o["IDX"].tolist() for o in outs] == [[i] for i in range(len(values))]
        assert outs[0]["OUT"].dtype == np.int32 and outs[0]["IDX"].dtype == np.uint32
    for thread in inst.model.threads:
        thread.join()
    assert inst.model.after_final == "Unable to send response. Response sender has been closed."
    # the worker threads have no context variable: get_model_dir() found the model through its module
    assert inst.model.model_dirs == [str(MODELS / "repeat")] * 2


def test_repeat_prunes_to_requested_outputs(load):
    inst = load("repeat")
    req, col = make_request({"IN": np.array([1, 2], np.int32)}, ("IDX",))
    inst.execute([req])
    assert [sorted(r.outputs) for r, _, final in col.wait() if not final] == [["IDX"], ["IDX"]]


def test_zero_responses_only_final(load):
    inst = load("repeat")
    req, col = make_request({"IN": np.zeros(0, np.int32)}, ("OUT",))
    inst.execute([req])
    assert col.wait() == [(None, None, True)]


def test_decoupled_execute_must_return_none(load):
    inst = load("repeat")
    req, col = make_request({"IN": np.array([1], np.int32)}, ("OUT",), parameters={"mode": "return_list"})
    with pytest.raises(InternalError) as info:
        inst.execute([req])
    assert str(info.value) == "Python model 'repeat_0' is using the decoupled mode and the execute function must return None."
    col.wait()
