"""StyleGAN2's networks in plain PyTorch (Karras et al. 2020, "Analyzing and Improving the Image Quality
of StyleGAN"; layer for layer as NVlabs/stylegan2-ada-pytorch's ``networks.py``, config ``auto``/``f``).

No compiled extensions: the FIR filter, the bias-activation and the modulated convolution are written
with ordinary PyTorch ops (a depthwise convolution, ``F.leaky_relu``, a convolution between two
per-channel scalings), so the networks run wherever torch does. Speed comes from the engine's whole-step
CUDA graph and ``train.compile``.

The building blocks, each with the paper's reason:

* **equalised learning rate**: weights are drawn from N(0, 1) (divided by ``lr_mul``) and scaled at run
  time by ``lr_mul / sqrt(fan_in)``, so Adam's per-parameter step is the same relative step everywhere;
* the **FIR filter** [1, 3, 3, 1] low-passes every up- and down-sampling (antialiasing);
* the **modulated convolution** scales the input channels by the style ``s = A(w)`` and the output
  channels by the demodulation ``1 / sqrt(sum (w s)^2)``, which is the per-sample convolution with
  normalised weights done as one ordinary convolution (section 2.2);
* **noise inputs** (per-pixel, a learned strength per layer), a learned **constant 4x4** input;
* G is a **skip** network (an RGB image per resolution, upsampled and summed); D is **residual**, ending
  in the **minibatch standard deviation** and two fully-connected layers.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

FIR = (1.0, 3.0, 3.0, 1.0)  # the paper's resampling filter (binomial), separable
LRELU_GAIN = math.sqrt(2)  # bias_act's gain for lrelu: keeps the activations' scale layer to layer


def channels_at(res: int, channel_base: int, channel_max: int) -> int:
    """Feature maps at resolution ``res``: ``min(channel_base / res, channel_max)`` (NVlabs' rule)."""
    return min(channel_base // res, channel_max)


def fir_kernel() -> Tensor:
    """The 2-D FIR filter, normalised to sum 1."""
    f = torch.tensor(FIR)
    k = torch.outer(f, f)
    return k / k.sum()


def _filter(x: Tensor, kernel: Tensor, pad: tuple[int, int], gain: float = 1.0, stride: int = 1) -> Tensor:
    """``x`` padded by ``pad`` (before, after) on both axes, filtered per channel, then strided."""
    c = x.shape[1]
    weight = (kernel * gain).to(x.dtype)[None, None].expand(c, 1, *kernel.shape)
    return F.conv2d(F.pad(x, [pad[0], pad[1], pad[0], pad[1]]), weight, stride=stride, groups=c)


def upsample2d(x: Tensor, kernel: Tensor) -> Tensor:
    """2x upsampling as upfirdn2d does it: zeros inserted after each pixel, padded (2, 1), filtered x4."""
    n, c, h, w = x.shape
    x = F.pad(x.reshape(n, c, h, 1, w, 1), [0, 1, 0, 0, 0, 1]).reshape(n, c, 2 * h, 2 * w)
    return _filter(x, kernel, (2, 1), gain=4.0)


def downsample2d(x: Tensor, kernel: Tensor) -> Tensor:
    """2x downsampling: padded (1, 1), filtered, every second pixel kept."""
    return _filter(x, kernel, (1, 1), stride=2)


class EqualLinear(nn.Module):
    """A fully-connected layer with equalised learning rate and an optional lrelu (gain sqrt 2)."""

    def __init__(
        self, in_f: int, out_f: int, lr_mul: float = 1.0, bias_init: float = 0.0, activation: bool = False
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_f, in_f) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_f,), float(bias_init)))
        self.weight_gain = lr_mul / math.sqrt(in_f)
        self.lr_mul = lr_mul
        self.activation = activation

    def forward(self, x: Tensor) -> Tensor:
        x = F.linear(x, self.weight * self.weight_gain, self.bias * self.lr_mul)
        return F.leaky_relu(x, 0.2) * LRELU_GAIN if self.activation else x


class EqualConv2d(nn.Module):
    """A convolution with equalised learning rate (D's layers); ``down=2`` filters then strides, as
    NVlabs' ``conv2d_resample`` does; ``activation``: lrelu with gain sqrt 2, times ``gain``."""

    def __init__(
        self, in_c: int, out_c: int, kernel: int, bias: bool = True, activation: bool = True, down: int = 1
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_c, in_c, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(out_c)) if bias else None
        self.weight_gain = 1 / math.sqrt(in_c * kernel * kernel)
        self.activation, self.down, self.padding = activation, down, kernel // 2
        self.register_buffer("fir", fir_kernel(), persistent=False)

    def forward(self, x: Tensor, gain: float = 1.0) -> Tensor:
        w = self.weight * self.weight_gain
        if self.down == 1:
            x = F.conv2d(x, w, padding=self.padding)
        elif w.shape[-1] == 1:  # 1x1 skip: downsample, then the convolution
            x = F.conv2d(downsample2d(x, self.fir), w)
        else:  # 3x3: the filter pads for both (2 each side), the convolution strides
            x = F.conv2d(_filter(x, self.fir, (self.padding + 1, self.padding + 1)), w, stride=2)
        if self.bias is not None:
            x = x + self.bias[None, :, None, None]
        if self.activation:
            x = F.leaky_relu(x, 0.2) * LRELU_GAIN
        return x * gain if gain != 1 else x


def modulated_conv2d(
    x: Tensor, weight: Tensor, styles: Tensor, demodulate: bool = True, up_kernel: Tensor | None = None
) -> Tensor:
    """The per-sample convolution with weights ``weight * styles`` (normalised per output channel when
    ``demodulate``), computed as one shared convolution between two per-channel scalings (NVlabs' non-fused
    path). ``up_kernel`` (the FIR filter, on ``x``'s device) upsamples: a stride-2 transposed convolution
    followed by the filter (x4, pad 1)."""
    x = x * styles[:, :, None, None].to(x.dtype)
    if up_kernel is not None:
        x = F.conv_transpose2d(x, weight.transpose(0, 1), stride=2)
        x = _filter(x, up_kernel, (1, 1), gain=4.0)
    else:
        x = F.conv2d(x, weight, padding=weight.shape[-1] // 2)
    if demodulate:  # 1 / sqrt(sum over in, kh, kw of (w s)^2), per sample and output channel
        dcoefs = (weight.square().sum([2, 3])[None] * styles.square()[:, None, :]).sum(2).add(1e-8).rsqrt()
        x = x * dcoefs[:, :, None, None].to(x.dtype)
    return x


class SynthesisLayer(nn.Module):
    """A modulated 3x3 convolution, noise, bias and lrelu: one layer of G's synthesis network.

    Noise is drawn fresh in training (PyTorch's generator: checkpointed, replayed by a CUDA graph) and is
    the fixed ``noise_const`` buffer in eval mode, so that a seed always samples the same image.
    """

    def __init__(self, in_c: int, out_c: int, w_dim: int, resolution: int, up: bool = False) -> None:
        super().__init__()
        self.affine = EqualLinear(w_dim, in_c, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_c, in_c, 3, 3))
        self.bias = nn.Parameter(torch.zeros(out_c))
        self.noise_strength = nn.Parameter(torch.zeros(()))
        self.register_buffer("noise_const", torch.randn(resolution, resolution))
        # the FIR filter of an upsampling layer, a buffer so that it lives on the device (not rebuilt per call)
        self.register_buffer("fir", fir_kernel() if up else None, persistent=False)
        self.resolution = resolution

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        x = modulated_conv2d(x, self.weight, self.affine(w), up_kernel=self.fir)
        if self.training:
            noise = torch.randn(x.shape[0], 1, self.resolution, self.resolution, device=x.device, dtype=x.dtype)
        else:
            noise = self.noise_const.to(x.dtype)
        x = x + noise * self.noise_strength + self.bias[None, :, None, None]
        return F.leaky_relu(x, 0.2) * LRELU_GAIN


class ToRGB(nn.Module):
    """A modulated 1x1 convolution without demodulation: the block's contribution to the image."""

    def __init__(self, in_c: int, channels: int, w_dim: int) -> None:
        super().__init__()
        self.affine = EqualLinear(w_dim, in_c, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(channels, in_c, 1, 1))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.weight_gain = 1 / math.sqrt(in_c)

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        x = modulated_conv2d(x, self.weight, self.affine(w) * self.weight_gain, demodulate=False)
        return x + self.bias[None, :, None, None]


class SynthesisBlock(nn.Module):
    """One resolution of the skip generator: (upsampling conv,) conv, toRGB; the image so far is upsampled
    with the FIR filter and this block's RGB added."""

    def __init__(self, in_c: int, out_c: int, w_dim: int, resolution: int, channels: int) -> None:
        super().__init__()
        self.first = in_c == 0  # the 4x4 block starts from the learned constant
        if self.first:
            self.const = nn.Parameter(torch.randn(out_c, resolution, resolution))
        else:
            self.conv0 = SynthesisLayer(in_c, out_c, w_dim, resolution, up=True)
        self.conv1 = SynthesisLayer(out_c, out_c, w_dim, resolution)
        self.torgb = ToRGB(out_c, channels, w_dim)
        self.num_conv = 1 if self.first else 2
        self.register_buffer("fir", fir_kernel(), persistent=False)

    def forward(self, x: Tensor | None, img: Tensor | None, ws: Tensor) -> tuple[Tensor, Tensor]:
        """``ws``: (N, num_conv + 1, w_dim), this block's styles (the last shared with the next block)."""
        if self.first:
            x = self.const[None].expand(ws.shape[0], -1, -1, -1)
            x = self.conv1(x, ws[:, 0])
        else:
            x = self.conv1(self.conv0(x, ws[:, 0]), ws[:, 1])
        y = self.torgb(x, ws[:, self.num_conv])
        img = y if img is None else upsample2d(img, self.fir) + y
        return x, img


class MappingNetwork(nn.Module):
    """z -> w: normalised z through ``layers`` lrelu layers at learning-rate multiplier 0.01.

    ``w_avg`` tracks the mean w during training (decay 0.995): the centre that truncation pulls towards.
    """

    def __init__(self, z_dim: int, w_dim: int, layers: int, lr_mul: float = 0.01, w_avg_beta: float = 0.995) -> None:
        super().__init__()
        dims = [z_dim] + [w_dim] * layers
        self.net = nn.Sequential(
            *(EqualLinear(a, b, lr_mul=lr_mul, activation=True) for a, b in zip(dims[:-1], dims[1:], strict=True))
        )
        self.register_buffer("w_avg", torch.zeros(w_dim))
        self.w_avg_beta = w_avg_beta

    def forward(self, z: Tensor, psi: Tensor | float = 1.0, track: bool = True) -> Tensor:
        """w for each z, truncated by ``psi``; in training ``track`` moves ``w_avg`` (not for mixing's second z,
        as in NVlabs' ``skip_w_avg_update``)."""
        z = z * (z.square().mean(1, keepdim=True) + 1e-8).rsqrt()  # normalize_2nd_moment
        w = self.net(z)
        if self.training and track:
            with torch.no_grad():
                self.w_avg.copy_(w.detach().mean(0).float().lerp(self.w_avg, self.w_avg_beta))
        if isinstance(psi, float) and psi == 1.0:
            return w
        return self.w_avg.to(w.dtype).lerp(w, psi)


def style_count(resolution: int) -> int:
    """How many ws the generator at ``resolution`` reads (``Generator.num_ws``): 2 log2(resolution) - 2."""
    return 2 * int(math.log2(resolution)) - 2


def first_style_at(resolution: int) -> int:
    """The index of the first of the ws that the synthesis block at ``resolution`` reads (it shares it with
    the previous block's ToRGB): the layer where "the styles from 16x16 on" begin, say."""
    return max(0, 2 * int(math.log2(resolution)) - 5)


class Generator(nn.Module):
    """StyleGAN2's G: mapping network, then the skip synthesis network from 4x4 to ``resolution``.

    ``forward(z, psi)`` is what sampling and export call: one w per sample, broadcast to every layer,
    truncated towards ``w_avg`` by ``psi`` (1: none). Training calls :meth:`map` and :meth:`synthesis`
    itself, to mix styles and to differentiate with respect to ``ws`` (path length).
    """

    def __init__(
        self,
        z_dim: int,
        w_dim: int,
        resolution: int,
        channels: int,
        channel_base: int,
        channel_max: int,
        mapping_layers: int,
    ) -> None:
        super().__init__()
        self.z_dim, self.w_dim, self.resolution = z_dim, w_dim, resolution
        self.mapping = MappingNetwork(z_dim, w_dim, mapping_layers)
        self.blocks = nn.ModuleList()
        res, in_c = 4, 0
        while res <= resolution:
            out_c = channels_at(res, channel_base, channel_max)
            self.blocks.append(SynthesisBlock(in_c, out_c, w_dim, res, channels))
            in_c, res = out_c, res * 2
        self.num_ws = sum(b.num_conv for b in self.blocks) + 1  # 2 log2(resolution) - 2
        # path-length regularisation's running mean |J^T y| (decay 0.01): state of the run, saved with G
        self.register_buffer("pl_mean", torch.zeros(()))

    def map(self, z: Tensor, psi: Tensor | float = 1.0, track: bool = True) -> Tensor:
        """(N, num_ws, w_dim): the mapped w of each sample, one per synthesis layer."""
        return self.mapping(z, psi, track)[:, None].expand(-1, self.num_ws, -1)

    def blend(self, z: Tensor, z2: Tensor, weights: Tensor, psi: Tensor | float = 1.0) -> Tensor:
        """Images whose style at each layer lies between z's w and z2's: ``weights`` (N, num_ws) is 0 for z,
        1 for z2. A walk in W (every layer at the same t) and a style-mixing grid (0 for the coarse
        layers, 1 for the fine) are both this one call, which the sampling tools make."""
        w, w2 = self.map(z, psi, track=False), self.map(z2, psi, track=False)
        return self.synthesis(torch.lerp(w, w2, weights[..., None].to(w.dtype)))

    def synthesis(self, ws: Tensor) -> Tensor:
        x = img = None
        i = 0
        for block in self.blocks:
            x, img = block(x, img, ws.narrow(1, i, block.num_conv + 1))
            i += block.num_conv
        return img

    def forward(
        self,
        z: Tensor,
        psi: Tensor | float = 1.0,
        mix_z: Tensor | None = None,
        mix_cutoff: Tensor | None = None,
        return_ws: bool = False,
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Images from ``z`` (truncated by ``psi``). Training passes ``mix_z`` and ``mix_cutoff`` (a (1,)
        tensor in [0, 1]: the styles from layer ``floor(cutoff * (num_ws - 1)) + 1`` on come from ``mix_z``;
        1 mixes nothing) and asks for the ws too (the path length differentiates with respect to them)."""
        ws = self.map(z, psi)
        if mix_z is not None:
            first = (mix_cutoff * (self.num_ws - 1)).floor() + 1  # on the device: no host decision
            later = torch.arange(self.num_ws, device=z.device)[None, :, None] >= first
            ws = torch.where(later, self.map(mix_z, psi, track=False), ws)
        img = self.synthesis(ws)
        return (img, ws) if return_ws else img


class MinibatchStd(nn.Module):
    """Appends the standard deviation of each feature over groups of ``group_size`` samples, averaged to
    ``channels`` maps (Karras et al. 2018): D sees how varied the batch is, which counters collapse."""

    def __init__(self, group_size: int, channels: int = 1) -> None:
        super().__init__()
        self.group_size, self.channels = group_size, channels

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        g = min(self.group_size, n) if n % min(self.group_size, n) == 0 else 1
        f = self.channels
        y = x.reshape(g, -1, f, c // f, h, w).float()
        y = (y - y.mean(0)).square().mean(0).add(1e-8).sqrt()  # std over the group
        y = y.mean([2, 3, 4]).reshape(-1, f, 1, 1).repeat(g, 1, h, w)
        return torch.cat([x, y.to(x.dtype)], 1)


class DiscriminatorBlock(nn.Module):
    """Residual: two 3x3 convolutions (the second downsampling) beside a 1x1 downsampling skip, summed
    with gain sqrt(1/2) each so the sum keeps unit variance."""

    def __init__(self, in_c: int, out_c: int) -> None:
        super().__init__()
        self.conv0 = EqualConv2d(in_c, in_c, 3)
        self.conv1 = EqualConv2d(in_c, out_c, 3, down=2)
        self.skip = EqualConv2d(in_c, out_c, 1, bias=False, activation=False, down=2)

    def forward(self, x: Tensor) -> Tensor:
        gain = np.sqrt(0.5)
        return self.skip(x, gain=gain) + self.conv1(self.conv0(x), gain=gain)


class Discriminator(nn.Module):
    """StyleGAN2's residual D: fromRGB, blocks down to 4x4, then minibatch std, a 3x3 conv and two
    fully-connected layers to one logit."""

    def __init__(
        self, resolution: int, channels: int, channel_base: int, channel_max: int, mbstd_group: int = 4
    ) -> None:
        super().__init__()
        self.fromrgb = EqualConv2d(channels, channels_at(resolution, channel_base, channel_max), 1)
        blocks = []
        res = resolution
        while res > 4:
            blocks.append(
                DiscriminatorBlock(
                    channels_at(res, channel_base, channel_max), channels_at(res // 2, channel_base, channel_max)
                )
            )
            res //= 2
        self.blocks = nn.Sequential(*blocks)
        c4 = channels_at(4, channel_base, channel_max)
        self.mbstd = MinibatchStd(mbstd_group) if mbstd_group else nn.Identity()
        self.conv = EqualConv2d(c4 + (1 if mbstd_group else 0), c4, 3)
        self.fc = EqualLinear(c4 * 16, c4, activation=True)
        self.out = EqualLinear(c4, 1)

    def forward(self, img: Tensor) -> Tensor:
        x = self.conv(self.mbstd(self.blocks(self.fromrgb(img))))
        return self.out(self.fc(x.flatten(1))).view(-1)
