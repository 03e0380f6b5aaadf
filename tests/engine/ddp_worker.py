"""Run by the data-parallel tests under torchrun: train the tiny DCGAN, save every rank's weights.

    python -m torch.distributed.run --standalone --nproc_per_node 2 tests/engine/ddp_worker.py DATA OUT \\
        [section.key=value ...]

Each rank writes ``OUT/rank<r>.safetensors`` with its own final G and D weights (rank 0 also writes the
run folder ``OUT/run`` as usual), so a test can compare the ranks with each other and with one process.
Rank 0 then runs G in training mode alone, as pix2pix's test-time mode does during an evaluation: with
batch norm synchronised, that must not wait for the other ranks.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

from gantk.config import overrides_to_dict, parse_overrides
from gantk.engine import Trainer
from gantk.engine.distributed import local_batchnorm
from tests.helpers import tiny_dcgan


def main() -> None:
    data, out = sys.argv[1], Path(sys.argv[2])
    sections = overrides_to_dict(parse_overrides(sys.argv[3:]))
    _, plugin = tiny_dcgan(data, **sections)
    trainer = Trainer(plugin, out / "run")
    try:
        trainer.fit()
        nets = trainer.nets
        weights = {f"{name}.{k}": v.detach().clone() for name, net in nets.items() for k, v in net.state_dict().items()}
        save_file(weights, out / f"rank{trainer.world.rank}.safetensors")
        if trainer.world.is_main:
            with local_batchnorm(), torch.no_grad():
                nets["G"].train()(torch.randn(2, plugin.cfg.model.nz))
            (out / "rank0-alone.ok").write_text("ok")
    finally:
        trainer.close()


if __name__ == "__main__":
    main()
