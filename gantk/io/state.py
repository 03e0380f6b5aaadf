"""Nested training state (optimizer, scheduler, scaler, RNG state dicts) as JSON + safetensors.

``pack`` walks a structure of dicts, lists, tuples, numbers, strings, tensors and numpy arrays. It
moves every tensor into a flat ``{key: tensor}`` map for safetensors and leaves a reference in the
JSON tree. Integer dict keys (optimizer state is keyed by parameter index) and tuples are tagged so
``unpack`` restores them exactly. Nothing is ever pickled, so loading a checkpoint cannot run code.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


def pack(obj: Any, tensors: dict[str, torch.Tensor] | None = None) -> tuple[Any, dict[str, torch.Tensor]]:
    """Split ``obj`` into a JSON-able tree and a dict of tensors."""
    tensors = {} if tensors is None else tensors
    return _pack(obj, tensors), tensors


def _pack(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, torch.Tensor):
        key = f"t{len(tensors)}"
        tensors[key] = obj.detach().to("cpu").contiguous().clone()
        return {"__tensor__": key}
    if isinstance(obj, np.ndarray):
        key = f"t{len(tensors)}"
        tensors[key] = torch.from_numpy(np.ascontiguousarray(obj).copy())
        return {"__ndarray__": key}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in obj):
            return {k: _pack(v, tensors) for k, v in obj.items()}
        return {"__dict__": [[_pack(k, tensors), _pack(v, tensors)] for k, v in obj.items()]}
    if isinstance(obj, tuple):
        return {"__tuple__": [_pack(v, tensors) for v in obj]}
    if isinstance(obj, list):
        return [_pack(v, tensors) for v in obj]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store {type(obj).__name__} in a checkpoint (only tensors, arrays and plain data)")


def unpack(tree: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of :func:`pack`."""
    if isinstance(tree, dict):
        if "__tensor__" in tree:
            return tensors[tree["__tensor__"]]
        if "__ndarray__" in tree:
            return tensors[tree["__ndarray__"]].numpy()
        if "__tuple__" in tree:
            return tuple(unpack(v, tensors) for v in tree["__tuple__"])
        if "__dict__" in tree:
            return {_hashable(unpack(k, tensors)): unpack(v, tensors) for k, v in tree["__dict__"]}
        return {k: unpack(v, tensors) for k, v in tree.items()}
    if isinstance(tree, list):
        return [unpack(v, tensors) for v in tree]
    return tree


def _hashable(key: Any) -> Any:
    return tuple(key) if isinstance(key, list) else key
