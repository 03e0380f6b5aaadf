"""gantk: a PyTorch toolkit for GANs -- a plugin registry of generator/discriminator pairs trained by
one shared engine."""

from gantk.config import Config, DataConfig, EMAConfig, EvalConfig, OptimConfig, ScheduleConfig, TrainConfig
from gantk.errors import GantkError
from gantk.plugin import EvalContext, GanPlugin, Hook, LatentCode, Phase, StepContext, Update

__version__ = "0.1.0"

__all__ = [
    "Config",
    "DataConfig",
    "EMAConfig",
    "EvalConfig",
    "EvalContext",
    "GanPlugin",
    "Hook",
    "GantkError",
    "LatentCode",
    "OptimConfig",
    "Phase",
    "ScheduleConfig",
    "StepContext",
    "TrainConfig",
    "Update",
    "__version__",
]
