import json
import random

import numpy as np
import torch

from gantk.io.state import pack, unpack


def test_round_trip_of_real_training_state():
    net = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(net.parameters(), betas=(0.5, 0.999))
    net(torch.randn(4, 3)).sum().backward()
    opt.step()
    state = {
        "opt": opt.state_dict(),
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "none": None,
    }
    tree, tensors = pack(state)
    tree = json.loads(json.dumps(tree))  # survives JSON
    back = unpack(tree, tensors)
    assert back["opt"]["param_groups"][0]["betas"] == (0.5, 0.999)
    assert set(back["opt"]["state"]) == {0, 1}  # integer keys restored
    assert torch.equal(back["opt"]["state"][0]["exp_avg"], state["opt"]["state"][0]["exp_avg"])
    random.setstate(back["python"])
    np.random.set_state(back["numpy"])
    assert torch.equal(back["torch"], state["torch"])
    opt2 = torch.optim.Adam(net.parameters())
    opt2.load_state_dict(back["opt"])  # loads into a real optimizer


def test_unsupported_objects_are_refused():
    import pytest

    with pytest.raises(TypeError, match="cannot store object"):
        pack({"x": object()})
