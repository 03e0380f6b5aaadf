"""Models on the Hugging Face Hub: ``hf://NAME[@revision]`` wherever a checkpoint is taken.

A model that ``gantk push`` published is a gantk export: ``config.json``, the generator's weights
(safetensors, or ONNX with ``export.json``) and ``manifest.json`` with each file's SHA-256, beside a model
card. :func:`fetch` downloads it into the hub's own cache (``HF_HUB_CACHE``; huggingface_hub's normal
download, so ``HF_ENDPOINT``, ``HF_TOKEN`` and offline mode work as they do for every Hub user), and
before anything is built from it:

* refuses a repository that holds a pickle (``.bin``, ``.pt``, ``.pth``, ``.pkl``, ``.ckpt``, ...), whose
  loading would run code: nothing of it is downloaded;
* downloads only the files the manifest lists, and checks each against its recorded SHA-256.

huggingface_hub is an optional extra (``pip install 'gantk[hub]'``).
"""

from __future__ import annotations

import json
from pathlib import Path

from gantk.errors import CheckpointError, ConfigError
from gantk.io import checkpoint as ckpt

PREFIX = "hf://"
#: files whose loading unpickles (runs code): a repository holding one is refused whole
PICKLES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib", ".dill")


def is_reference(text: object) -> bool:
    return isinstance(text, str) and text.startswith(PREFIX)


def parse(reference: str) -> tuple[str, str | None]:
    """``hf://user/model@v1`` -> ``("user/model", "v1")``; the revision is None when not given."""
    body = reference[len(PREFIX) :]
    repo, at, revision = body.partition("@")
    parts = repo.strip("/").split("/")
    if len(parts) != 2 or not all(parts) or (at and not revision):
        raise ConfigError(
            f"{reference} is not a Hub model reference; expected hf://OWNER/NAME or hf://OWNER/NAME@REVISION "
            "(a branch, tag or commit)."
        )
    return "/".join(parts), revision or None


def require_hub():
    try:
        import huggingface_hub
    except ImportError:
        raise ConfigError(
            "hf:// models come from the Hugging Face Hub through huggingface_hub, which is not installed: "
            "pip install 'gantk[hub]'."
        ) from None
    return huggingface_hub


def fetch(reference: str) -> Path:
    """The local folder of Hub model ``reference`` (``hf://OWNER/NAME[@revision]``), downloaded into the
    hub's cache and verified against its manifest; a repository with a pickle is refused."""
    hub = require_hub()
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

    repo, revision = parse(reference)
    try:
        files = hub.HfApi().list_repo_files(repo, revision=revision)
        pickles = sorted(f for f in files if f.lower().endswith(PICKLES))
        if pickles:
            raise CheckpointError(
                f"{reference} holds {', '.join(pickles[:4])}: pickle files, whose loading runs code. gantk loads "
                "only safetensors + JSON (and ONNX exports), and downloads nothing from a repository that holds "
                "a pickle."
            )
        if ckpt.MANIFEST not in files or ckpt.CONFIG not in files:
            raise CheckpointError(
                f"{reference} is not a gantk model: it has no {ckpt.MANIFEST} and {ckpt.CONFIG} (publish one with "
                "gantk push RUN --repo NAME)."
            )
        manifest = Path(hub.hf_hub_download(repo, ckpt.MANIFEST, revision=revision))
        listed = _listed(manifest, reference)
        for name in listed:
            hub.hf_hub_download(repo, name, revision=revision)
    except (RepositoryNotFoundError, RevisionNotFoundError) as exc:
        raise CheckpointError(f"{reference}: {str(exc).splitlines()[0]}") from None
    except HfHubHTTPError as exc:
        raise CheckpointError(f"{reference} could not be downloaded: {str(exc).splitlines()[0]}") from None
    folder = manifest.parent
    for name in listed:
        ckpt.verify(folder / name)  # the SHA-256 recorded at export, before anything is built
    return folder


def _listed(manifest: Path, reference: str) -> list[str]:
    """The files a downloaded manifest lists, each a plain name in the model's folder."""
    try:
        recorded = json.loads(manifest.read_text(encoding="utf-8")).get("sha256")
    except (OSError, ValueError, AttributeError):
        recorded = None
    if not isinstance(recorded, dict) or ckpt.CONFIG not in recorded:
        raise CheckpointError(f"{reference}: its {ckpt.MANIFEST} records no SHA-256 of {ckpt.CONFIG} and the weights.")
    bad = [n for n in recorded if not isinstance(n, str) or Path(n).name != n or n.lower().endswith(PICKLES)]
    if bad:
        raise CheckpointError(f"{reference}: its {ckpt.MANIFEST} lists {bad[0]!r}, which gantk does not load.")
    return sorted(recorded)


def is_cached_blob(path: Path) -> bool:
    """Whether ``path`` is the hub cache's link from a snapshot to its blob (``<repo>/snapshots/<commit>/f``
    -> ``<repo>/blobs/<hash>``): how huggingface_hub stores every downloaded file, not a link out of a model."""
    snapshots = path.parent.parent
    return snapshots.name == "snapshots" and path.resolve().is_relative_to((snapshots.parent / "blobs").resolve())
