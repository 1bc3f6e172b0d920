"""glibc's allocator set for PyTorch work on the CPU: freed tensor memory is kept for reuse.

By default glibc hands a freed block larger than its mmap threshold (dynamic, at most 32 MiB) back to
the kernel at once, and trims the top of the heap once more than twice that threshold is free, so
the next tensor of the same size is mapped afresh and faulted in page by page. A training step
allocates and frees the same large activations and gradients over and over, and on the 2-core
development machine that doubled some kernels' time from one call to the next (the input gradient
of ResNet's stem: 7.5 or 16.5 ms a call, depending on whether its buffer was still mapped).
:func:`tune_cpu_malloc` fixes both thresholds with ``mallopt`` (M_MMAP_THRESHOLD, M_TRIM_THRESHOLD),
the effect PyTorch's performance guide gets from preloading jemalloc or tcmalloc: training steps
2-14% faster on the development machine, for a higher peak RSS (the heap keeps blocks the default
would unmap: +4% to +18% in the same steps). Measured in benchmarks/RESULTS.md (2026-12-07 21:21-21:29,
`bench_train_step.py --malloc default` against the tuned default).

Process-wide and once per process. Left alone: another C library than glibc, a preloaded
jemalloc / tcmalloc (LD_PRELOAD), or ``WSOL_MALLOC=default`` in the environment.
"""

from __future__ import annotations

import ctypes
import logging
import os
import platform

__all__ = ["MMAP_THRESHOLD", "TRIM_THRESHOLD", "malloc_setting", "tune_cpu_malloc"]

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3      # glibc's mallopt parameters (malloc.h)
MMAP_THRESHOLD = 1 << 30     # blocks up to 1 GiB come from the heap and return to it when freed
TRIM_THRESHOLD = 1 << 30     # up to 1 GiB of free heap top is kept rather than given back
ENV = "WSOL_MALLOC"

_state: str | None = None    # what tune_cpu_malloc did in this process (None: not called yet)


def tune_cpu_malloc() -> bool:
    """Set glibc's mmap and trim thresholds (:data:`MMAP_THRESHOLD`, :data:`TRIM_THRESHOLD`) once
    for this process; True when they are in effect. Called by
    :func:`wsol.engine.distributed.resolve_device` for a CPU device (training, batch evaluation,
    segmentation, generation), by the robustness evaluation on the CPU and by the CPU benchmarks."""
    global _state
    if _state is None:
        _state = _apply()
        if _state == "tuned":
            log.info("glibc malloc: mmap and trim thresholds %d MiB (freed tensors are reused; %s=default "
                     "turns this off)", MMAP_THRESHOLD >> 20, ENV)
        else:
            log.debug("glibc malloc left as it is: %s", _state)
    return _state == "tuned"


def malloc_setting() -> str:
    """'tuned', or why the allocator was left alone, or 'not set' before :func:`tune_cpu_malloc` ran:
    for benchmark records."""
    return _state or "not set"


def _apply() -> str:
    choice = os.environ.get(ENV, "tuned").strip().lower()
    if choice == "default":
        return f"default ({ENV}=default)"
    if choice != "tuned":
        raise ValueError(f"environment variable {ENV} must be 'tuned' or 'default', got {choice!r}")
    preload = os.environ.get("LD_PRELOAD", "")
    if any(name in preload for name in ("jemalloc", "tcmalloc", "mimalloc")):
        return f"default (LD_PRELOAD={preload})"
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return "default (not glibc)"
    try:
        libc = ctypes.CDLL("libc.so.6")
        ok = libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and libc.mallopt(M_TRIM_THRESHOLD,
                                                                                    TRIM_THRESHOLD) == 1
    except (OSError, AttributeError) as err:
        return f"default (mallopt unavailable: {err})"
    return "tuned" if ok else "default (mallopt refused the thresholds)"
