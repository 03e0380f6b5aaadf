"""Read a W&B offline run's ``.wandb`` file back: what ``wandb sync`` would upload.

The file is W&B's transaction log: a 7-byte header (``:W&B``, magic, version), then LevelDB's log format
(32 KiB blocks of records, each a 7-byte header of CRC, length and kind: full, first, middle or last
piece), each record one ``wandb_internal_pb2.Record``. wandb ships no reader of its own any more."""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

BLOCK = 32 * 1024


def records(path: Path) -> Iterator[Any]:
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B transaction log"
    pos, pieces = 7, b""
    while pos + 7 <= len(data):
        left = BLOCK - pos % BLOCK
        if left < 7:  # a block's tail too short for a header is padding
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if kind == 0 and length == 0:  # zero padding up to the block's end
            pos += left
            continue
        pieces += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # a full record, or the last piece of one
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pieces)
            pieces = b""
            yield record


def read_run(path: Path) -> tuple[dict[int, dict[str, Any]], dict[str, Any], dict[str, Any]]:
    """``(history by step, config, summary)`` of one offline run file."""
    history: dict[int, dict[str, Any]] = {}
    config: dict[str, Any] = {}
    summary: dict[str, Any] = {}
    for record in records(path):
        kind = record.WhichOneof("record_type")
        if kind == "history":
            row = {"/".join([i.key, *i.nested_key]).strip("/"): json.loads(i.value_json) for i in record.history.item}
            history.setdefault(int(record.history.step.num), {}).update(row)
        elif kind == "config":
            config.update({i.key: json.loads(i.value_json) for i in record.config.update})
        elif kind == "summary":
            summary.update({i.key: json.loads(i.value_json) for i in record.summary.update if i.key})
    return history, config, summary
