"""The FID Inception network's weights, made here with random values (nothing is downloaded).

The architecture is torch-fidelity's; its constructor insists on loading weights, so it is built once
with loading switched off to learn the parameter names and shapes, and the random initial values are
saved. Batch norm is calibrated on random images so that the features are not degenerate.
"""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import torch
from safetensors.torch import save_file


def fid_inception_file(path: Path) -> Path:
    """A safetensors file of the FID Inception network's parameters with random values."""
    if path.is_file():
        return path
    from torch_fidelity import feature_extractor_inceptionv3 as fe

    torch.manual_seed(0)
    with (
        mock.patch.object(fe.torch, "load", lambda *a, **k: {}),
        mock.patch.object(fe.FeatureExtractorInceptionV3, "load_state_dict", lambda self, state: None),
    ):
        net = fe.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path="none")
    for m in net.modules():  # batch norm calibrated on random images: activations keep their scale
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None
    net.train()
    with torch.no_grad():
        net((torch.rand(4, 3, 299, 299) * 255).to(torch.uint8))
    state = {k: v.contiguous() for k, v in net.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(path))
    return path
