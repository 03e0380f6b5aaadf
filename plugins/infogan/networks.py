"""InfoGAN networks for MNIST (Chen et al. 2016, appendix C.1, table 1), sized by ``data.image_size``.

G: the input ``[z, one_hot(c_cat), c_cont]`` (74 values by default) -> FC 1024 - BN - ReLU -> FC
128 x s/4 x s/4 - BN - ReLU -> 4x4 up-conv 64, stride 2 - BN - ReLU -> 4x4 up-conv to the image, stride 2,
then tanh (the paper's sigmoid, for images in [-1, 1]).

D is a shared body with two heads: the body is 4x4 conv 64, stride 2 - LeakyReLU(0.1) -> 4x4 conv 128,
stride 2 - BN - LeakyReLU -> FC 1024 - BN - LeakyReLU; D's head is one FC to the real/fake logit. Q, the
second head, is its own network (FC 128 - BN - LeakyReLU - FC to the categorical logits and the means of
the continuous codes) so that its optimizer can step it with G (the paper's rates: D 2e-4, G and Q 1e-3)
while the body learns only from D's loss. ``D(x)`` returns the logit and the body's 1024 features, which
Q reads.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

#: the paper's leaky ReLU slope for D and Q
SLOPE = 0.1


class InfoGenerator(nn.Module):
    """``[z, one_hot(c_cat), c_cont]`` -> image in [-1, 1]."""

    def __init__(self, in_features: int, channels: int, image_size: int, width: int = 64) -> None:
        super().__init__()
        self.side = image_size // 4
        self.fc = nn.Sequential(
            nn.Linear(in_features, 1024, bias=False),
            nn.BatchNorm1d(1024),
            nn.ReLU(True),
            nn.Linear(1024, 2 * width * self.side**2, bias=False),
            nn.BatchNorm1d(2 * width * self.side**2),
            nn.ReLU(True),
        )
        self.conv = nn.Sequential(
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(True),
            nn.ConvTranspose2d(width, channels, 4, 2, 1),
            nn.Tanh(),
        )

    def forward(self, code: Tensor) -> Tensor:
        return self.conv(self.fc(code).view(len(code), -1, self.side, self.side))


class InfoDiscriminator(nn.Module):
    """Image -> ``(logit, features)``: the real/fake logit and the shared body's features that Q reads."""

    def __init__(self, channels: int, image_size: int, width: int = 64) -> None:
        super().__init__()
        side = image_size // 4
        self.body = nn.Sequential(
            nn.Conv2d(channels, width, 4, 2, 1),
            nn.LeakyReLU(SLOPE, True),
            nn.Conv2d(width, 2 * width, 4, 2, 1, bias=False),
            nn.BatchNorm2d(2 * width),
            nn.LeakyReLU(SLOPE, True),
            nn.Flatten(),
            nn.Linear(2 * width * side**2, 1024, bias=False),
            nn.BatchNorm1d(1024),
            nn.LeakyReLU(SLOPE, True),
        )
        self.head = nn.Linear(1024, 1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        features = self.body(x)
        return self.head(features).view(-1), features


class QHead(nn.Module):
    """D's features -> ``(categorical logits, continuous means)``: Q(c | x), a factored distribution whose
    continuous part is a Gaussian of unit variance (the paper's "factored Gaussian"; only the mean is learnt)."""

    def __init__(self, categories: int, continuous: int) -> None:
        super().__init__()
        self.categories = categories
        self.net = nn.Sequential(
            nn.Linear(1024, 128, bias=False),
            nn.BatchNorm1d(128),
            nn.LeakyReLU(SLOPE, True),
            nn.Linear(128, categories + continuous),
        )

    def forward(self, features: Tensor) -> tuple[Tensor, Tensor]:
        out = self.net(features)
        return out[:, : self.categories], out[:, self.categories :]


def code_vector(z: Tensor, c_cat: Tensor, c_cont: Tensor, categories: int) -> Tensor:
    """G's input: noise, the categorical code one-hot (a comparison, not ``F.one_hot``, which checks its
    input on the host), and the continuous codes."""
    one_hot = (c_cat.long()[:, None] == torch.arange(categories, device=c_cat.device)).to(z.dtype)
    return torch.cat([z, one_hot, c_cont.to(z.dtype)], 1)
