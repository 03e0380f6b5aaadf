"""Run by the data-parallel tests under torchrun: train the tiny DCGAN, save every rank's weights.

    python -m torch.distributed.run --standalone --nproc_per_node 2 tests/engine/ddp_worker.py DATA OUT \\
        [section.key=value ...] [nan_at=RANK:STEP] [plugin=stylegan2]

Each rank writes ``OUT/rank<r>.safetensors`` with its own final G and D weights (rank 0 also writes the
run folder ``OUT/run`` as usual), so a test can compare the ranks with each other and with one process.
Rank 0 then runs G in training mode alone, as pix2pix's test-time mode does during an evaluation: with
batch norm synchronised, that must not wait for the other ranks. ``nan_at=RANK:STEP`` makes D's loss
NaN on that rank at that step only; ``OUT/rank<r>.skipped`` then says how many updates the rank skipped.
``plugin=stylegan2`` trains the tiny StyleGAN2 instead (lazy R1 and path length: double backward under DDP).
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
from tests.helpers.zoo import tiny_stylegan2


def main() -> None:
    data, out = sys.argv[1], Path(sys.argv[2])
    args = sys.argv[3:]
    nan_at = [tuple(map(int, a.removeprefix("nan_at=").split(":"))) for a in args if a.startswith("nan_at=")]
    stylegan2 = "plugin=stylegan2" in args
    sections = overrides_to_dict(parse_overrides([a for a in args if not a.startswith(("nan_at=", "plugin="))]))
    plugin = tiny_stylegan2(data, **sections) if stylegan2 else tiny_dcgan(data, **sections)[1]
    if nan_at:
        d_loss = plugin.d_loss

        def poisoned(batch, ctx):
            terms = d_loss(batch, ctx)
            if (ctx.rank, ctx.step) in nan_at:
                terms["real"] = terms["real"] * float("nan")
            return terms

        plugin.d_loss = poisoned  # phases() reads the attribute, so the engine's update calls this one
    trainer = Trainer(plugin, out / "run")
    try:
        trainer.fit()
        nets = trainer.nets
        weights = {f"{name}.{k}": v.detach().clone() for name, net in nets.items() for k, v in net.state_dict().items()}
        for name, ema in trainer.emas.items():  # the averaged weights: their half-life counts the global batch
            weights.update({f"{name}_ema.{k}": v.detach().clone() for k, v in ema.module.named_parameters()})
        save_file(weights, out / f"rank{trainer.world.rank}.safetensors")
        (out / f"rank{trainer.world.rank}.skipped").write_text(str(trainer.nonfinite_skipped))
        if trainer.world.is_main and not stylegan2:
            with local_batchnorm(), torch.no_grad():
                nets["G"].train()(torch.randn(2, plugin.cfg.model.nz))
            (out / "rank0-alone.ok").write_text("ok")
    finally:
        trainer.close()


if __name__ == "__main__":
    main()
