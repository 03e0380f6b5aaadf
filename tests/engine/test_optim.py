"""Optimizers and learning-rate schedules as the config names them."""

import pytest
import torch

from gantk.config import OptimConfig, ScheduleConfig
from gantk.engine.optim import build_optimizer, build_scheduler, lr_factor


@pytest.mark.parametrize(
    "name, cls",
    [
        ("adam", torch.optim.Adam),
        ("adamw", torch.optim.AdamW),
        ("sgd", torch.optim.SGD),
        ("rmsprop", torch.optim.RMSprop),
    ],
)
def test_each_named_optimizer_is_built_with_the_configured_values(name, cls):
    params = [torch.nn.Parameter(torch.zeros(2))]
    opt = build_optimizer(params, OptimConfig(name=name, lr=0.01, weight_decay=0.1), torch.device("cpu"))
    assert isinstance(opt, cls)
    group = opt.param_groups[0]
    assert float(group["lr"]) == pytest.approx(0.01) and group["weight_decay"] == pytest.approx(0.1)
    if name in ("adam", "adamw"):
        assert tuple(group["betas"]) == (0.5, 0.999)  # the DCGAN default of OptimConfig


def test_schedules_follow_their_definitions():
    linear = ScheduleConfig(name="linear_decay", decay_start=10)
    assert [lr_factor(linear, s, 20) for s in (0, 9, 10, 15, 20)] == [1.0, 1.0, 1.0, 0.5, 0.0]
    warm = ScheduleConfig(name="constant", warmup_steps=4)
    assert [lr_factor(warm, s, 20) for s in (0, 1, 3, 10)] == [0.25, 0.5, 1.0, 1.0]
    step = ScheduleConfig(name="step", step_size=5, gamma=0.5)
    assert [lr_factor(step, s, 20) for s in (0, 4, 5, 10)] == [1.0, 1.0, 0.5, 0.25]
    cosine = ScheduleConfig(name="cosine")
    assert lr_factor(cosine, 0, 10) == pytest.approx(1.0) and lr_factor(cosine, 10, 10) == pytest.approx(0.0)
    assert lr_factor(cosine, 5, 10) == pytest.approx(0.5)


def test_the_scheduler_writes_the_rate_into_the_optimizer():
    params = [torch.nn.Parameter(torch.zeros(2))]
    opt = build_optimizer(params, OptimConfig(lr=1.0), torch.device("cpu"))
    sched = build_scheduler(opt, ScheduleConfig(name="linear_decay", decay_start=2), max_steps=4)
    rates = []
    for _ in range(4):
        opt.step()
        sched.step()
        rates.append(float(opt.param_groups[0]["lr"]))
    assert rates == pytest.approx([1.0, 1.0, 0.5, 0.0])
