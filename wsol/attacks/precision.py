"""Arithmetic of the attribution attack's step direction (``attribution_attack(precision=...)``).

"fp32": every pass in float32. "bf16": the surrogate step direction (the double backward, nearly
all of an attack's cost) under bfloat16 autocast; label checks, the selection measure and the
metric maps stay float32, so the scores are exact for the iterates the attack visits. bf16 pays
only on hardware with bfloat16 arithmetic (a GPU, or a CPU with AVX512-BF16 or AMX); elsewhere
oneDNN emulates it and the step is several times slower than float32's (benchmarks/RESULTS.md).
"""

from __future__ import annotations

import contextlib
import functools
import logging

import torch

__all__ = ["ATTACK_PRECISIONS", "check_precision", "native_bf16", "precision_context", "warn_if_emulated"]

log = logging.getLogger(__name__)

ATTACK_PRECISIONS = ("fp32", "bf16")


def check_precision(precision) -> None:
    if precision not in ATTACK_PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(ATTACK_PRECISIONS)}, got {precision!r}")


def native_bf16(device: torch.device) -> bool:
    """Whether `device` has bfloat16 arithmetic in hardware: on CUDA, what torch reports; on the
    CPU, AVX512-BF16 or AMX tiles; other devices count as having it (nothing to check)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return True
    probes = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return any(probe() for probe in probes if probe is not None)


def warn_if_emulated(precision: str, device: torch.device) -> None:
    """Log a warning (once per device type) when bf16 is asked for where it is emulated."""
    if precision == "bf16" and not native_bf16(device):
        _warn_emulated(device.type)


@functools.lru_cache(maxsize=None)
def _warn_emulated(device_type: str) -> None:
    log.warning("attack precision bf16 on a %s without bfloat16 arithmetic (a CPU needs AVX512-BF16 or "
                "AMX): it is emulated, and the attack runs several times SLOWER than with fp32", device_type)


def precision_context(precision: str, device: torch.device):
    """bfloat16 autocast on `device` for "bf16", else nothing."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
