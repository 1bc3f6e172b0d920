"""Scoring saved maps: the whole score-map tool vs the straightforward wsolevaluation loop.

Writes N synthetic saved maps (224 x 224 float32 ``<image_id>.npy``, CAM-like: smoothed noise
plus a bump on the first GT box) with ILSVRC-test-like metadata (wsolevaluation layout: ids
``val/ILSVRC2012_val_XXXXXXXX.JPEG``, image sizes 200..500 px, 1 box for ~77% of the images and
2..20 for the rest), then times

* ``evaluate_scoremaps`` in this process (MaxBoxAcc + MaxBoxAccV2, everything the tool reports);
* ``tools/evaluate_wsol.py --scoremaps`` end to end in a fresh process (start-up, metadata,
  loading, scoring, JSON), with its peak RSS;
* the start-up alone: importing the score-map path, and the CLI on a one-map split;
* the straightforward loops on the first ``--baseline`` maps: wsolevaluation's per-threshold
  ``cv2.threshold`` + ``findContours`` + ``boundingRect`` (V2: every contour; v1: the largest by
  ``cv2.contourArea``), the maps loaded and normalised as the tool does; V2 both verbatim (IoU max
  recomputed inside the threshold loop, as wsolevaluation) and with that max hoisted.

The tool's numbers on the baseline subset must equal the loops' (asserted: MaxBoxAcc, MaxBoxAccV2
per delta and the best thresholds). Optionally (``--masks M``) the same for PxAP on
OpenImages-like mask metadata (``id,mask_path,ignore_path``, PNG instance and ignore masks).

    python benchmarks/bench_scoremaps.py --no-record                       # 2,000 maps, print only
    python benchmarks/bench_scoremaps.py --n 50000 --data /tmp/sm50k      # the ILSVRC test size (~10 GB)
    python benchmarks/bench_scoremaps.py --n 5000 --masks 500 --baseline 10

Times are wall-clock on whatever else the machine runs (the load average is recorded); the
tool uses numba's threads (all cores), the loops one thread as wsolevaluation does. Numbers
at a size other than the one run are labelled "extrapolated from N".
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numba
import numpy as np

from _record import REPO, append_entry, git_commit
from bench_localization import straightforward_maxboxacc_v2
from wsol.engine.scoremaps import evaluate_scoremaps, gt_boxes, load_scoremap
from wsol.data.wsoleval import read_wsoleval
from wsol.localization import normalize_scoremap

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
ILSVRC_TEST = 50_000
SIZE = 224
DELTAS = (30, 50, 70)
MAP_KINDS = {"noisy": "bench_localization's CAM-like recipe: smoothed 14x14 noise, bicubic, pixel noise std 0.005",
             "blob": "smoothed 14x14 noise, bicubic, plus a Gaussian bump on the first GT box, no pixel noise"}


# -- synthetic data ----------------------------------------------------------------------------------
def _boxes(rng, W: int, H: int) -> np.ndarray:
    """1 box (77%) or 2..20 (ILSVRC test: 80,477 boxes on 50,000 images, at most 20 per image)."""
    k = 1 if rng.random() < 0.766 else 1 + min(int(rng.geometric(0.385)), 19)
    x0, y0 = rng.integers(0, W - 20, k), rng.integers(0, H - 20, k)
    x1 = x0 + 10 + (rng.random(k) * (W - 1 - x0 - 10)).astype(int)
    y1 = y0 + 10 + (rng.random(k) * (H - 1 - y0 - 10)).astype(int)
    return np.stack([x0, y0, x1, y1], 1)


def _map(rng, box224: np.ndarray, kind: str) -> np.ndarray:
    """(224, 224) float32 in [0, 1]. "noisy": bench_localization's CAM-like recipe (smoothed 14 x 14
    noise, bicubic, pixel noise std 0.005: many small contours near every level, as gradient maps
    have); "blob": the same without pixel noise plus a Gaussian bump on ``box224`` (few contours:
    the loops' cheapest case)."""
    m = cv2.GaussianBlur(rng.random((14, 14)), (0, 0), rng.uniform(0.7, 2.0))
    m = cv2.resize(m, (SIZE, SIZE), interpolation=cv2.INTER_CUBIC)
    if kind == "noisy":
        m = m + 0.005 * rng.standard_normal((SIZE, SIZE))
    else:
        x0, y0, x1, y1 = box224
        yy, xx = np.mgrid[0:SIZE, 0:SIZE]
        sx, sy = max(x1 - x0, 4) / 3, max(y1 - y0, 4) / 3
        m = m + rng.uniform(0.5, 2.0) * np.exp(-((xx - (x0 + x1) / 2) ** 2 / (2 * sx ** 2)
                                                 + (yy - (y0 + y1) / 2) ** 2 / (2 * sy ** 2)))
    return ((m - m.min()) / (m.max() - m.min())).astype(np.float32)


def _write_lines(path: Path, lines: list[str]) -> None:
    path.write_text("\n".join(lines))  # wsolevaluation's files: no header, no trailing newline


def write_box_split(root: Path, n: int, kind: str = "noisy", seed: int = 0) -> tuple[Path, Path]:
    """N maps (``_map`` of ``kind``) under root/maps and metadata under root/metadata/ILSVRC/test;
    reused when root/stamp.json says the same (n, kind, seed). Returns (maps folder, metadata split folder)."""
    maps, meta = root / "maps", root / "metadata" / "ILSVRC" / "test"
    stamp = root / "stamp.json"
    want = {"n": n, "seed": seed, "kind": kind}
    if stamp.is_file() and json.loads(stamp.read_text()) == want:
        return maps, meta
    rng = np.random.default_rng(seed)
    (maps / "val").mkdir(parents=True, exist_ok=True)
    meta.mkdir(parents=True, exist_ok=True)
    ids, labels, sizes, locs = [], [], [], []
    for i in range(n):
        image_id = f"val/ILSVRC2012_val_{i + 1:08d}.JPEG"
        W, H = (int(v) for v in rng.integers(200, 501, 2))
        boxes = _boxes(rng, W, H)
        first = np.trunc(boxes[0] * SIZE / np.array([W, H, W, H], dtype=np.float64)).astype(int)
        np.save(maps / f"{image_id}.npy", _map(rng, first, kind))
        ids.append(image_id)
        labels.append(f"{image_id},{int(rng.integers(0, 1000))}")
        sizes.append(f"{image_id},{W},{H}")
        locs += [f"{image_id},{b[0]},{b[1]},{b[2]},{b[3]}" for b in boxes.tolist()]
    for name, lines in (("image_ids.txt", ids), ("class_labels.txt", labels), ("image_sizes.txt", sizes),
                        ("localization.txt", locs)):
        _write_lines(meta / name, lines)
    stamp.write_text(json.dumps(want))
    return maps, meta


def write_mask_split(root: Path, n: int, seed: int = 1) -> tuple[Path, Path, Path]:
    """OpenImages-like: N maps, 1-3 instance PNG masks per image (at 240..480 px) and one ignore PNG,
    ``localization.txt`` lines ``id,mask_path,ignore_path`` (the ignore path on an image's first line
    only), empty image_sizes.txt. Returns (maps folder, metadata split folder, mask root)."""
    maps, meta, masks = root / "maps", root / "metadata" / "OpenImages" / "test", root / "masks"
    stamp = root / "stamp.json"
    want = {"n": n, "seed": seed, "kind": "masks"}
    if stamp.is_file() and json.loads(stamp.read_text()) == want:
        return maps, meta, root
    rng = np.random.default_rng(seed)
    for d in (maps / "test" / "m0", meta, masks / "test" / "m0"):
        d.mkdir(parents=True, exist_ok=True)
    ids, labels, locs = [], [], []
    for i in range(n):
        image_id = f"test/m0/{i:016x}.jpg"
        W, H = (int(v) for v in rng.integers(240, 481, 2))
        boxes = _boxes(rng, W, H)[:3]
        first = np.trunc(boxes[0] * SIZE / np.array([W, H, W, H], dtype=np.float64)).astype(int)
        np.save(maps / f"{image_id}.npy", _map(rng, first, "blob"))
        ignore = np.zeros((H, W), np.uint8)
        gx0, gy0 = int(rng.integers(0, W // 2)), int(rng.integers(0, H // 2))
        ignore[gy0:gy0 + H // 3, gx0:gx0 + W // 3] = 255
        ign_path = f"test/m0/{i:016x}_ignore.png"
        cv2.imwrite(str(masks / ign_path), np.stack([ignore] * 3, -1))  # ignore masks are RGB
        for k, (x0, y0, x1, y1) in enumerate(boxes.tolist()):
            inst = np.zeros((H, W), np.uint8)
            cv2.ellipse(inst, ((x0 + x1) // 2, (y0 + y1) // 2), (max((x1 - x0) // 2, 1), max((y1 - y0) // 2, 1)),
                        0, 0, 360, 255, -1)
            mask_path = f"test/m0/{i:016x}_mm0_{k:08x}.png"
            cv2.imwrite(str(masks / mask_path), inst)
            locs.append(f"{image_id},masks/{mask_path}," + (f"masks/{ign_path}" if k == 0 else ""))
        ids.append(image_id)
        labels.append(f"{image_id},0")
    for name, lines in (("image_ids.txt", ids), ("class_labels.txt", labels), ("image_sizes.txt", []),
                        ("localization.txt", locs)):
        _write_lines(meta / name, lines)
    stamp.write_text(json.dumps(want))
    return maps, meta, root


def subset_split(meta: Path, n: int, out: Path) -> Path:
    """The first n images of a box split's metadata, written under out/<dataset>/test."""
    dest = out / meta.parent.name / meta.name
    dest.mkdir(parents=True, exist_ok=True)
    ids = (meta / "image_ids.txt").read_text().split("\n")[:n]
    keep = set(ids)
    _write_lines(dest / "image_ids.txt", ids)
    for name in ("class_labels.txt", "image_sizes.txt", "localization.txt"):
        lines = (meta / name).read_text().split("\n")
        _write_lines(dest / name, [ln for ln in lines if ln and ln.split(",", 1)[0] in keep])
    return dest


# -- the straightforward loops -------------------------------------------------------------------------
def straightforward_maxboxacc_v1(maps, gt_boxes_, interval, deltas=DELTAS):
    """wsolevaluation's BoxEvaluator loop, multi_contour_eval=False: the largest contour by
    cv2.contourArea at every threshold. Returns {delta: (T,) %}."""
    thresholds = np.arange(0, 1, interval)
    num_correct = {d: np.zeros(len(thresholds)) for d in deltas}
    for scoremap, gt in zip(maps, gt_boxes_):
        height, width = scoremap.shape
        image = np.expand_dims((scoremap * 255).astype(np.uint8), 2)
        boxes = []
        for t in thresholds:
            _, thr = cv2.threshold(image, int(t * np.max(image)), 255, cv2.THRESH_BINARY)
            out = cv2.findContours(thr, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)
            contours = out[0] if len(out) == 2 else out[1]
            if len(contours) == 0:
                boxes.append([0, 0, 0, 0])
                continue
            x, y, w, h = cv2.boundingRect(max(contours, key=cv2.contourArea))
            boxes.append([x, y, min(x + w, width - 1), min(y + h, height - 1)])
        a = np.asarray(boxes)[:, None, :]
        b = np.asarray(gt)[None, :, :]
        iw = np.maximum(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]) + 1, 0)
        ih = np.maximum(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]) + 1, 0)
        inter = iw * ih
        union = ((a[..., 2] - a[..., 0] + 1) * (a[..., 3] - a[..., 1] + 1)
                 + (b[..., 2] - b[..., 0] + 1) * (b[..., 3] - b[..., 1] + 1) - inter)
        best = (inter / union).max(1)  # max IoU over the GT boxes, per threshold
        for d in deltas:
            num_correct[d][best >= d / 100] += 1
    return {d: num_correct[d] * 100 / len(maps) for d in deltas}


def load_as_tool(maps_dir: Path, meta: Path):
    """The maps (normalised as the tool does) and GT boxes (rescaled as the tool does) of a split."""
    split = read_wsoleval(meta.parent, meta.name, require_images=False)
    maps = [normalize_scoremap(load_scoremap(maps_dir / f"{s.image_id}.npy"), (SIZE, SIZE)) for s in split.samples]
    return maps, [gt_boxes(s) for s in split.samples]


def summary_of(curves_v1, curves_v2, interval) -> dict:
    """The tool's summary keys from {delta: (T,) %} curves, as BoxEvaluator.compute picks them."""
    th = np.arange(0, 1, interval)
    v2 = {str(d): float(curves_v2[d].max()) for d in DELTAS}
    v2["mean"] = float(np.mean([v2[str(d)] for d in DELTAS]))
    return {"MaxBoxAcc": {"50": float(curves_v1[50].max())}, "MaxBoxAccV2": v2,
            "best_threshold": {"MaxBoxAcc": {str(d): float(th[np.argmax(curves_v1[d])]) for d in DELTAS},
                               "MaxBoxAccV2": {str(d): float(th[np.argmax(curves_v2[d])]) for d in DELTAS}}}


def straightforward_pxap(maps_dir: Path, meta: Path, mask_root: Path, interval: float) -> float:
    """wsolevaluation's MaskEvaluator: per image cv2.imread + nearest resize of every instance and the
    ignore mask, np.histogram of the gt=1 and gt=0 scores, then its PxAP formula."""
    split = read_wsoleval(meta.parent, meta.name, require_images=False, mask_root=mask_root)
    th = np.arange(0, 1, interval)
    edges = np.append(th, [1.0, 2.0, 3.0])
    h_true, h_false = np.zeros(len(edges) - 1), np.zeros(len(edges) - 1)
    for s in split.samples:
        scoremap = normalize_scoremap(load_scoremap(maps_dir / f"{s.image_id}.npy"), (SIZE, SIZE))
        fg = np.zeros((SIZE, SIZE), bool)
        for p in s.mask_paths:
            m = cv2.resize(cv2.imread(p, cv2.IMREAD_GRAYSCALE).astype(np.float32), (SIZE, SIZE),
                           interpolation=cv2.INTER_NEAREST)
            fg |= m > 0.5
        ign = cv2.resize(cv2.imread(s.ignore_path, cv2.IMREAD_GRAYSCALE).astype(np.float32), (SIZE, SIZE),
                         interpolation=cv2.INTER_NEAREST) > 0.5
        gt = fg.astype(np.uint8) + (ign & ~fg).astype(np.uint8) * 255
        h_true += np.histogram(scoremap[gt == 1], bins=edges)[0]
        h_false += np.histogram(scoremap[gt == 0], bins=edges)[0]
    tp = h_true[::-1].cumsum()
    fn = h_true.sum() - tp
    fp = h_false[::-1].cumsum()
    nonzero = (tp + fp) != 0
    with np.errstate(invalid="ignore", divide="ignore"):  # 0 / 0 in empty bins, left out below
        precision, recall = tp / (tp + fp), tp / (tp + fn)
    return 100 * float((precision[1:] * np.diff(recall))[nonzero[1:]].sum())


# -- timing --------------------------------------------------------------------------------------------
def timed(fn, *args, **kwargs):
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t


def run_cli(args: list[str]) -> tuple[float, float]:
    """(wall s, peak RSS MiB) of ``python tools/evaluate_wsol.py ARGS`` in a fresh process (its own
    rusage, from os.wait4); its output goes to a temp file, shown if it fails."""
    with tempfile.TemporaryFile("w+") as log:
        t = time.perf_counter()
        proc = subprocess.Popen([sys.executable, str(REPO / "tools" / "evaluate_wsol.py"), *args],
                                stdout=log, stderr=log)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t
        code = os.waitstatus_to_exitcode(status)
        proc.returncode = code  # reaped here; keep Popen from waiting again
        if code != 0:
            log.seek(0)
            raise RuntimeError(f"evaluate_wsol.py {' '.join(args)} exited with {code}:\n{log.read()[-2000:]}")
    return wall, usage.ru_maxrss / 1024


def startup(tmp: Path, maps: Path, meta: Path) -> dict:
    """Import time of the score-map path (and whether torch came with it), and the CLI on one map."""
    code = ("import time, sys; t = time.perf_counter(); import wsol.cli.evaluate_wsol, wsol.engine.scoremaps; "
            "print(time.perf_counter() - t, 'torch' in sys.modules, 'torchvision' in sys.modules, 'timm' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    one = subset_split(meta, 1, tmp / "one")
    wall, rss = run_cli(["--scoremaps", str(maps), "--metadata", str(one), "--out", str(tmp / "one.json")])
    return {"import_s": float(out[0]), "torch": out[1] == "True", "torchvision": out[2] == "True",
            "timm": out[3] == "True", "cli_one_map_s": wall, "cli_one_map_rss_mib": rss}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=2000, help="saved maps to write and score (default 2000; 50000 = ILSVRC test)")
    p.add_argument("--kind", choices=("noisy", "blob"), default="noisy",
                   help="maps: bench_localization's CAM-like recipe with pixel noise (default) or smooth blobs")
    p.add_argument("--intervals", type=float, nargs="+", default=[0.01, 0.001])
    p.add_argument("--baseline", type=int, default=20, help="maps the straightforward loops run at 0.001 "
                   "(5x as many at 0.01), extrapolated to --n")
    p.add_argument("--masks", type=int, default=0, help="also PxAP on this many OpenImages-like mask images")
    p.add_argument("--data", type=Path, help="folder for the synthetic split (kept and reused; default: a temp dir)")
    p.add_argument("--skip-cli", action="store_true", help="time evaluate_scoremaps in-process only")
    p.add_argument("--note", help="a line of notes for the RESULTS.md entry")
    p.add_argument("--no-record", action="store_true", help="print only; do not append to RESULTS.md")
    p.add_argument("--results", type=Path, default=RESULTS)
    args = p.parse_args(argv)

    tmp_ctx = tempfile.TemporaryDirectory(prefix="bench_scoremaps_")
    tmp = Path(tmp_ctx.name)
    root = args.data or tmp / "boxes"
    load = [os.getloadavg()]
    (maps, meta), t_write = timed(write_box_split, root / f"boxes-{args.kind}" if args.data else root, args.n, args.kind)
    print(f"data: {args.n} maps in {maps} ({t_write:.1f} s to write or reuse)", flush=True)
    threads = numba.get_num_threads()
    _, t_jit = timed(evaluate_scoremaps, maps, subset_split(meta, 4, tmp / "warm"), cam_curve_interval=0.1,
                     progress=False)
    print(f"warm-up (numba cache load or compile, excluded): {t_jit:.2f} s")
    up = startup(tmp, maps, meta)
    print(f"start-up: import {up['import_s']:.2f} s (torch imported: {up['torch']}), CLI on one map "
          f"{up['cli_one_map_s']:.2f} s, {up['cli_one_map_rss_mib']:.0f} MiB")

    rows = []
    for interval in args.intervals:
        nb = args.baseline * (5 if interval >= 0.01 else 1)
        sub = subset_split(meta, nb, tmp / f"sub{interval:g}")
        (sub_maps, sub_gts), t_load = timed(load_as_tool, maps, sub)
        v1, t_v1 = timed(straightforward_maxboxacc_v1, sub_maps, sub_gts, interval)
        v2, t_v2 = timed(straightforward_maxboxacc_v2, sub_maps, sub_gts, interval)
        _, t_v2h = timed(straightforward_maxboxacc_v2, sub_maps, sub_gts, interval, DELTAS, True)
        got = evaluate_scoremaps(maps, sub, cam_curve_interval=interval, progress=False)
        want = summary_of(v1, v2, interval)
        for key in want:
            assert got[key] == want[key], (interval, key, got[key], want[key])
        res, t_ours = timed(evaluate_scoremaps, maps, meta, cam_curve_interval=interval, progress=False)
        scale = args.n / nb
        base = {"v2": (t_load + t_v2) * scale, "v2h": (t_load + t_v2h) * scale, "v1": (t_load + t_v1) * scale}
        print(f"interval {interval:g}: loops done, numbers equal; tool in-process {t_ours:.1f} s", flush=True)
        if args.skip_cli:
            t_cli, rss = float("nan"), float("nan")
        else:
            t_cli, rss = run_cli(["--scoremaps", str(maps), "--metadata", str(meta), "--cam-curve-interval",
                                         f"{interval:g}", "--out", str(tmp / "cli.json")])
        rows.append({"interval": interval, "n": args.n, "nb": nb, "ours": t_ours, "cli": t_cli, "rss": rss, **base,
                     "MaxBoxAccV2": res["MaxBoxAccV2"]["mean"], "MaxBoxAcc": res["MaxBoxAcc"]["50"]})
        print(f"interval {interval:g}: ours {t_ours:.1f} s ({1e3 * t_ours / args.n:.2f} ms/map), CLI {t_cli:.1f} s "
              f"({rss:.0f} MiB peak), V2 loop {1e3 * base['v2'] / args.n:.0f} ms/map "
              f"(hoisted {1e3 * base['v2h'] / args.n:.0f}), v1 loop {1e3 * base['v1'] / args.n:.0f} ms/map")
    load.append(os.getloadavg())

    mask_rows = []
    if args.masks:
        mroot = (args.data / "masks") if args.data else tmp / "masks"
        (mmaps, mmeta, mask_root), _ = timed(write_mask_split, mroot, args.masks)
        for interval in args.intervals:
            want, t_ref = timed(straightforward_pxap, mmaps, mmeta, mask_root, interval)
            got, t_ours = timed(evaluate_scoremaps, mmaps, mmeta, mask_root=mask_root, cam_curve_interval=interval,
                                progress=False)
            assert abs(got["PxAP"] - want) <= 1e-9 * abs(want), (interval, got["PxAP"], want)
            mask_rows.append({"interval": interval, "n": args.masks, "ours": t_ours, "ref": t_ref, "PxAP": got["PxAP"]})
            print(f"masks, interval {interval:g}: ours {t_ours:.1f} s, wsolevaluation loop {t_ref:.1f} s, "
                  f"PxAP {got['PxAP']:.3f}")
        load.append(os.getloadavg())

    table = format_table(rows, mask_rows, args.n)
    print(table)
    if not args.no_record:
        command = shlex.join(["python", "benchmarks/bench_scoremaps.py"] + list(argv if argv is not None else sys.argv[1:]))
        record(args, command, table, up, threads, load)
    tmp_ctx.cleanup()


def format_table(rows, mask_rows, n) -> str:
    lines = ["| interval | N maps | tool in-process: s (ms/map) | CLI end to end: s (ms/map) | CLI peak RSS (MiB) "
             "| V2 loop: s (ms/map) | V2 loop, max hoisted: s | v1 loop: s | in-process speedup vs V2 loop / hoisted "
             "/ v1 + hoisted V2 | CLI speedup, same | MaxBoxAcc / MaxBoxAccV2 | note |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        both = r["v1"] + r["v2h"]

        def speedups(t):
            return f"{r['v2'] / t:.0f}x / {r['v2h'] / t:.0f}x / {both / t:.0f}x"

        lines.append(f"| {r['interval']:g} | {r['n']} | {r['ours']:.1f} ({1e3 * r['ours'] / r['n']:.2f}) "
                     f"| {r['cli']:.1f} ({1e3 * r['cli'] / r['n']:.2f}) | {r['rss']:.0f} "
                     f"| {r['v2']:.0f} ({1e3 * r['v2'] / r['n']:.0f}) | {r['v2h']:.0f} | {r['v1']:.0f} "
                     f"| {speedups(r['ours'])} | {speedups(r['cli'])} | {r['MaxBoxAcc']:.2f} / {r['MaxBoxAccV2']:.2f} "
                     f"| tool and CLI measured on {n}; loops measured on {r['nb']}, extrapolated to {n} |")
    if mask_rows:
        lines += ["", "| PxAP interval | N images | tool in-process: s (ms/image) | wsolevaluation loop: s | speedup | PxAP |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {r['interval']:g} | {r['n']} | {r['ours']:.2f} ({1e3 * r['ours'] / r['n']:.2f}) | {r['ref']:.2f} "
                  f"| {r['ref'] / r['ours']:.1f}x | {r['PxAP']:.3f} |" for r in mask_rows]
    return "\n".join(lines)


def record(args, command: str, table: str, up: dict, threads: int, load: list) -> None:
    loads = "; ".join("/".join(f"{v:.2f}" for v in la) for la in load)
    bullets = [
        f"machine: {platform.platform()}, {os.cpu_count()} CPUs; Python {platform.python_version()}, numpy "
        f"{np.__version__}, OpenCV {cv2.__version__}, numba {numba.__version__} ({threads} threads); commit {git_commit()} "
        "(plus the working tree)",
        f"command: `{command}`",
        f"load average (1/5/15 min) at start, after the box runs{', after the mask runs' if args.masks else ''}: {loads}",
        f"data: {args.n} synthetic 224x224 float32 maps ({MAP_KINDS[args.kind]}), ILSVRC-test-like "
        "metadata (sizes 200-500 px, 1 box for ~77% of the images, 2-20 for the rest); the loops load and "
        "normalise the maps as the tool does; MaxBoxAcc, MaxBoxAccV2 and best thresholds asserted equal to the "
        "loops on their subset" + ("; PxAP asserted equal to wsolevaluation's MaskEvaluator loop" if args.masks else ""),
        f"start-up (measured): importing the score-map path {up['import_s']:.2f} s (torch imported: {up['torch']}, "
        f"torchvision: {up['torchvision']}, timm: {up['timm']}); the CLI on a one-map split {up['cli_one_map_s']:.2f} s, "
        f"{up['cli_one_map_rss_mib']:.0f} MiB peak RSS",
        "speedups are the loops' extrapolated time over the tool's measured time (CLI: end to end, start-up "
        "included)",
    ] + ([f"notes (by hand): {args.note}"] if args.note else [])
    append_entry(args.results, "bench_scoremaps: scoring saved maps, the whole tool", bullets, [table])


if __name__ == "__main__":
    main()
