"""Checkpoints: model tensors in safetensors, metadata in a JSON file beside them.

``<stem>.safetensors`` holds the state dict; ``<stem>.json`` holds what is needed to rebuild
and check the model (arch, num_classes, the ``build_model`` arguments, class names, image
size, config) plus anything the caller adds (epoch, metrics, ...) and the SHA-256 of the
tensor file, so a tensor file and a JSON from different saves (or a corrupted tensor file) are
never paired silently; checkpoints written before the hash was recorded still load.
Both files are written to temporary names and renamed into place, so a failed write leaves
the previous checkpoint intact. Tensors holding NaN or Inf are refused at save and at load.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from wsol.models.pretrained import nonfinite_tensors

__all__ = [
    "CheckpointError",
    "NonFiniteCheckpoint",
    "FORMAT_VERSION",
    "nonfinite_tensors",
    "save_checkpoint",
    "resolve_checkpoint",
    "read_checkpoint_meta",
    "load_checkpoint",
]

FORMAT_VERSION = 1
_SUFFIXES = (".safetensors", ".json")


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable, or does not match what the caller expects."""


class NonFiniteCheckpoint(CheckpointError):
    """Tensors holding NaN or Inf (a diverged model): never written, never loaded."""


def _nonfinite_message(names: list[str], total: int) -> str:
    shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
    return f"{len(names)} of {total} tensors hold NaN or Inf ({shown})"


def _stem(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path.with_suffix("") if path.suffix in _SUFFIXES else path


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _tmp_in(directory: Path, suffix: str) -> Path:
    fd, name = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=directory)
    os.close(fd)
    return Path(name)


def save_checkpoint(
    path: str | os.PathLike,
    model: torch.nn.Module,
    *,
    class_names: list[str] | None = None,
    image_size: int | None = None,
    config: dict | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``<stem>.safetensors`` and ``<stem>.json`` atomically; returns the JSON path.

    ``model`` must come from :func:`wsol.models.build_model` (it needs ``build_args``).
    Raises CheckpointError (the previous checkpoint, if any, is left as it was), and its
    subclass NonFiniteCheckpoint when a tensor holds NaN or Inf.
    """
    build_args = getattr(model, "build_args", None)
    if not build_args:
        raise CheckpointError("model has no build_args; build it with wsol.models.build_model")
    stem = _stem(path)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    bad = nonfinite_tensors(tensors)
    if bad:
        raise NonFiniteCheckpoint(f"{stem}.safetensors: not written: {_nonfinite_message(bad, len(tensors))}; "
                                  "the previous checkpoint, if any, is kept")
    stem.parent.mkdir(parents=True, exist_ok=True)
    tmp_t, tmp_j = _tmp_in(stem.parent, ".safetensors"), _tmp_in(stem.parent, ".json")
    try:
        save_file(tensors, str(tmp_t), metadata={"format": str(FORMAT_VERSION)})
        meta = {
            "format": FORMAT_VERSION,
            "arch": build_args["arch"],
            "num_classes": build_args["num_classes"],
            "build_args": build_args,
            "class_names": list(class_names) if class_names is not None else None,
            "image_size": image_size,
            "config": config,
            "tensors_file": stem.name + ".safetensors",
            "tensors_sha256": _sha256(tmp_t),
            "torch_version": torch.__version__,
            **(extra or {}),
        }
        tmp_j.write_text(json.dumps(meta, indent=2, sort_keys=False, default=str))
        os.replace(tmp_t, stem.with_suffix(".safetensors"))
        os.replace(tmp_j, stem.with_suffix(".json"))
    except (OSError, TypeError, ValueError, SafetensorError) as err:
        raise CheckpointError(f"{stem}: could not write checkpoint ({err}); the previous one is kept") from err
    finally:
        for tmp in (tmp_t, tmp_j):
            tmp.unlink(missing_ok=True)
    return stem.with_suffix(".json")


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """The checkpoint stem for a run folder (best, else last), a stem, or either file."""
    path = Path(path)
    if path.is_dir():
        for name in ("checkpoint-best", "checkpoint-last"):
            if (path / f"{name}.json").is_file():
                return path / name
        raise CheckpointError(f"{path}: run folder has no checkpoint-best.json or checkpoint-last.json")
    stem = _stem(path)
    if not stem.with_suffix(".json").is_file():
        raise CheckpointError(f"{stem.with_suffix('.json')}: checkpoint metadata not found")
    if not stem.with_suffix(".safetensors").is_file():
        raise CheckpointError(f"{stem.with_suffix('.safetensors')}: checkpoint tensors not found")
    return stem


def read_checkpoint_meta(path: str | os.PathLike) -> dict:
    """The JSON metadata of a checkpoint (see :func:`resolve_checkpoint` for ``path``)."""
    file = resolve_checkpoint(path).with_suffix(".json")
    try:
        meta = json.loads(file.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{file}: unreadable checkpoint metadata ({err})") from err
    for key in ("format", "arch", "num_classes", "build_args"):
        if key not in meta:
            raise CheckpointError(f"{file}: not an art-wsol checkpoint (no '{key}' field)")
    if meta["format"] > FORMAT_VERSION:
        raise CheckpointError(f"{file}: checkpoint format {meta['format']} is newer than this toolkit's "
                              f"({FORMAT_VERSION}); update art-wsol")
    return meta


def _check_expected(file: Path, meta: dict, arch: str | None, num_classes: int | None) -> None:
    problems = []
    if arch is not None and meta["arch"] != arch:
        problems.append(f"arch is '{meta['arch']}', expected '{arch}'")
    if num_classes is not None and meta["num_classes"] != num_classes:
        problems.append(f"it has {meta['num_classes']} classes, expected {num_classes}")
    if problems:
        raise CheckpointError(f"{file}: checkpoint does not match: " + "; ".join(problems))


def load_checkpoint(
    path: str | os.PathLike,
    *,
    arch: str | None = None,
    num_classes: int | None = None,
    map_location: str | torch.device = "cpu",
    builder=None,
    kind: str = "classifier",
) -> tuple[torch.nn.Module, dict]:
    """Rebuild the model of a checkpoint and load its tensors.

    Args:
        path: run folder, checkpoint stem, or its .safetensors / .json file.
        arch, num_classes: when given, the checkpoint must match them.
        builder, kind: what rebuilds the model from ``build_args`` (default
            ``wsol.models.build_model``) and the checkpoint kind it expects ("classifier", or
            "segmenter" for segmentation.load_segmenter).
    Returns:
        (model in eval mode, metadata dict).
    Raises:
        CheckpointError naming the file: missing, unreadable, not matching, corrupt or from
        another save (SHA-256), or NonFiniteCheckpoint when tensors hold NaN or Inf.
    """
    from wsol.models import build_model

    stem = resolve_checkpoint(path)
    meta = read_checkpoint_meta(stem)
    found = meta.get("kind", "classifier")
    if found != kind:
        how = "segmentation.models.load_segmenter" if found == "segmenter" else "wsol.engine.load_checkpoint"
        raise CheckpointError(f"{stem.with_suffix('.json')}: a {found} checkpoint, expected a {kind} "
                              f"(load it with {how})")
    _check_expected(stem.with_suffix(".json"), meta, arch, num_classes)
    state = _load_tensors(stem, meta, map_location)
    tfile = stem.with_suffix(".safetensors")
    model = (builder or build_model)(**meta["build_args"])
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as err:  # shape mismatches
        raise CheckpointError(f"{tfile}: tensors do not fit arch '{meta['arch']}': {err}") from err
    if missing or unexpected:
        raise CheckpointError(
            f"{tfile}: tensors do not fit arch '{meta['arch']}': missing {sorted(missing)[:8]}, "
            f"unexpected {sorted(unexpected)[:8]}"
        )
    return model.eval(), meta


def _load_tensors(stem: Path, meta: dict, map_location) -> dict[str, torch.Tensor]:
    """The state dict of ``<stem>.safetensors``, checked against the JSON's SHA-256 (when it has one)."""
    tfile = stem.with_suffix(".safetensors")
    expected = meta.get("tensors_sha256")
    if expected and _sha256(tfile) != expected:
        raise CheckpointError(f"{tfile}: tensor file does not match {stem.name}.json (its SHA-256 differs from "
                              "the one recorded there): corrupt or from another save")
    try:
        state = load_file(str(tfile), device=str(map_location))
    except (OSError, SafetensorError) as err:
        raise CheckpointError(f"{tfile}: unreadable checkpoint tensors ({err})") from err
    bad = nonfinite_tensors(state)
    if bad:
        raise NonFiniteCheckpoint(f"{tfile}: {_nonfinite_message(bad, len(state))}; the model diverged "
                                  "before this save and cannot be used")
    return state
