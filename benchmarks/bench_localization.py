"""MaxBoxAccV2 speed: wsol.metrics.BoxEvaluator vs the straightforward wsolevaluation loop.

The straightforward loop is wsolevaluation's BoxEvaluator: for every image and threshold,
cv2.threshold + cv2.findContours + boundingRect per contour, then one IoU matrix per image.
Both run on the same synthetic CAM-like 224x224 maps (smoothed random 14x14 grids, bicubic
upsampling, a little noise, fixed seed) with 1-2 random GT boxes each; the numbers must be
identical (asserted).

    python benchmarks/bench_localization.py --no-record          # print only
    python benchmarks/bench_localization.py                       # also append to RESULTS.md
    python benchmarks/bench_localization.py --n 200 --cub-baseline 20
    python benchmarks/bench_localization.py --threads 1                # ours on one thread

Ours is the public path: ``BoxEvaluator(multi_contour=True).accumulate`` on the whole batch,
which runs the maps over numba's threads (all cores by default); the loops are single-threaded
as wsolevaluation is. Times are wall-clock.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import time
from pathlib import Path

import cv2
import numba
import numpy as np

from wsol.localization import normalize_scoremap
from wsol.metrics import BoxEvaluator

CUB_TEST = 5794
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def synthetic_maps(n: int, seed: int = 0, size: int = 224, noise: float = 0.005):
    """n CAM-like maps (n, size, size) float64 in [0, 1] and n GT box arrays (K, 4)."""
    rng = np.random.default_rng(seed)
    maps, boxes = [], []
    for _ in range(n):
        m = cv2.GaussianBlur(rng.random((14, 14)), (0, 0), rng.uniform(0.7, 2.0))
        m = cv2.resize(m, (size, size), interpolation=cv2.INTER_CUBIC)
        m = m + noise * rng.standard_normal((size, size))
        maps.append(normalize_scoremap(m, (size, size)))
        k = int(rng.integers(1, 3))
        x0, y0 = rng.integers(0, size // 2, k), rng.integers(0, size // 2, k)
        w, h = rng.integers(size // 6, size // 2, k), rng.integers(size // 6, size // 2, k)
        boxes.append(np.stack([x0, y0, np.minimum(x0 + w, size - 1), np.minimum(y0 + h, size - 1)], 1))
    return np.stack(maps), boxes


def straightforward_maxboxacc_v2(maps, gt_boxes, interval, deltas=(30, 50, 70), hoist=False):
    """wsolevaluation's BoxEvaluator loop, multi_contour_eval=True. Returns {delta: (T,) %}.

    wsolevaluation recomputes ``multiple_iou.max(1)`` over *all* boxes of the image inside
    the per-threshold slice loop (quadratic in the number of thresholds); ``hoist=True``
    computes it once per image -- the same numbers, a fairer baseline.
    """
    thresholds = np.arange(0, 1, interval)
    num_correct = {d: np.zeros(len(thresholds)) for d in deltas}
    for scoremap, gt in zip(maps, gt_boxes):
        height, width = scoremap.shape
        image = np.expand_dims((scoremap * 255).astype(np.uint8), 2)
        all_boxes, counts = [], []
        for t in thresholds:
            _, thr = cv2.threshold(image, int(t * np.max(image)), 255, cv2.THRESH_BINARY)
            out = cv2.findContours(thr, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)
            contours = out[0] if len(out) == 2 else out[1]
            if len(contours) == 0:
                all_boxes.append(np.asarray([[0, 0, 0, 0]])); counts.append(1); continue
            boxes = []
            for c in contours:
                x, y, w, h = cv2.boundingRect(c)
                boxes.append([x, y, min(x + w, width - 1), min(y + h, height - 1)])
            all_boxes.append(np.asarray(boxes)); counts.append(len(contours))
        a = np.concatenate(all_boxes)[:, None, :]
        b = np.asarray(gt)[None, :, :]
        iw = np.maximum(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]) + 1, 0)
        ih = np.maximum(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]) + 1, 0)
        inter = iw * ih
        union = ((a[..., 2] - a[..., 0] + 1) * (a[..., 3] - a[..., 1] + 1)
                 + (b[..., 2] - b[..., 0] + 1) * (b[..., 3] - b[..., 1] + 1) - inter)
        multiple_iou = inter / union
        per_box = multiple_iou.max(1) if hoist else None
        sliced, idx = [], 0
        for nr in counts:
            row_max = per_box if hoist else multiple_iou.max(1)
            sliced.append(max(row_max[idx:idx + nr])); idx += nr
        for d in deltas:
            num_correct[d][np.where(np.asarray(sliced) >= d / 100)[0]] += 1
    return {d: num_correct[d] * 100 / len(maps) for d in deltas}


def ours_maxboxacc_v2(maps, gt_boxes, interval):
    ev = BoxEvaluator(cam_curve_interval=interval, multi_contour=True)
    ev.accumulate(maps, gt_boxes)
    res = ev.compute()
    return {int(d): np.asarray(v) for d, v in res["curve"]["MaxBoxAccV2"].items()}


def timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=100, help="maps per interval (default 100)")
    p.add_argument("--intervals", type=float, nargs="+", default=[0.01, 0.001])
    p.add_argument("--cub-baseline", type=int, default=20,
                   help="maps the baseline runs for the CUB-test estimate at 0.001 (extrapolated)")
    p.add_argument("--cub-full", action="store_true", help=f"run ours on all {CUB_TEST} maps at 0.001")
    p.add_argument("--noise", type=float, default=0.005,
                   help="std of pixel noise added before normalisation (0: pure smooth CAM-like maps)")
    p.add_argument("--threads", type=int, default=None,
                   help="numba threads for ours (default: numba's default, one per core)")
    p.add_argument("--no-record", action="store_true", help="print only; do not append to RESULTS.md")
    p.add_argument("--results", type=Path, default=RESULTS, help="file the table is appended to")
    args = p.parse_args(argv)

    if args.threads:
        numba.set_num_threads(args.threads)
    threads = numba.get_num_threads()
    rows = []
    maps, boxes = synthetic_maps(args.n, noise=args.noise)
    # numba compiles (or loads its cache) once; enough maps to start every thread
    _, t_jit = timed(ours_maxboxacc_v2, maps[:2 * threads], boxes[:2 * threads], 0.1)
    print(f"warm-up (numba compile or cache load, excluded from the table): {t_jit:.2f} s")
    for interval in args.intervals:
        ref, t_ref = timed(straightforward_maxboxacc_v2, maps, boxes, interval)
        _, t_hoist = timed(straightforward_maxboxacc_v2, maps, boxes, interval, (30, 50, 70), True)
        got, t_ours = timed(ours_maxboxacc_v2, maps, boxes, interval)
        for d in ref:
            np.testing.assert_array_equal(got[d], ref[d], err_msg=f"interval {interval}, delta {d}")
        rows.append((f"{interval:g}", args.n, t_ref, t_hoist, t_ours, "measured"))

    # CUB-sized test split (5,794 maps) at 0.001: baselines on a subset, extrapolated.
    nb = args.cub_baseline
    sub_maps, sub_boxes = synthetic_maps(nb, seed=1, noise=args.noise)
    ref, t_ref = timed(straightforward_maxboxacc_v2, sub_maps, sub_boxes, 0.001)
    _, t_hoist = timed(straightforward_maxboxacc_v2, sub_maps, sub_boxes, 0.001, (30, 50, 70), True)
    got, t_ours = timed(ours_maxboxacc_v2, sub_maps, sub_boxes, 0.001)
    for d in ref:
        np.testing.assert_array_equal(got[d], ref[d])
    scale = CUB_TEST / nb
    if args.cub_full:
        cub_maps, cub_boxes = synthetic_maps(CUB_TEST, seed=2, noise=args.noise)
        _, t_cub = timed(ours_maxboxacc_v2, cub_maps, cub_boxes, 0.001)
        ours_note = f"ours measured on all {CUB_TEST}"
    else:
        t_cub = t_ours * scale
        ours_note = f"ours extrapolated from {nb}"
    rows.append(("0.001 (CUB test)", CUB_TEST, t_ref * scale, t_hoist * scale, t_cub,
                 f"baselines extrapolated from {nb} maps; {ours_note}"))

    header = ("| interval | N maps | wsolevaluation loop (s) | loop, IoU max hoisted (s) | ours (s) "
              "| ms/map: loop / hoisted / ours | speedup vs wsoleval | speedup vs hoisted | note |\n"
              "|---|---|---|---|---|---|---|---|---|")
    lines = [f"| {r[0]} | {r[1]} | {r[2]:.2f} | {r[3]:.2f} | {r[4]:.2f} "
             f"| {1e3 * r[2] / r[1]:.1f} / {1e3 * r[3] / r[1]:.1f} / {1e3 * r[4] / r[1]:.2f} "
             f"| {r[2] / r[4]:.1f}x | {r[3] / r[4]:.1f}x | {r[5]} |" for r in rows]
    table = "\n".join([header] + lines)
    print(table)
    if not args.no_record:
        command = " ".join(["python", "benchmarks/bench_localization.py"] + list(argv or sys.argv[1:]))
        maps_note = (f"synthetic 224x224 CAM-like maps (smoothed 14x14 noise, bicubic, pixel noise std "
                     f"{args.noise:g}, seed 0/1{'/2' if args.cub_full else ''}), 1-2 random GT boxes each; "
                     f"MaxBoxAccV2 curves asserted identical; ours on {threads} numba thread(s)")
        record(table, command, maps_note, args.results)


def record(table: str, command: str, maps_note: str, path: Path = RESULTS) -> None:
    """Append the table with machine, date and command to ``path`` (benchmarks/RESULTS.md)."""
    if not path.exists():
        path.write_text("# Benchmark results\n\nAppended by the scripts in `benchmarks/`.\n")
    machine = f"{platform.platform()}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs"
    when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    with path.open("a") as f:
        f.write(f"\n## bench_localization: MaxBoxAccV2 speed ({when})\n\n"
                f"- machine: {machine}; Python {platform.python_version()}, numpy {np.__version__}, "
                f"OpenCV {cv2.__version__}\n- command: `{command}`\n- maps: {maps_note}\n\n{table}\n")


if __name__ == "__main__":
    main()
