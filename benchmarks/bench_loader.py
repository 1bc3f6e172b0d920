#!/usr/bin/env python
"""Training-loader speed and memory: wsol.data's train loader vs torchvision's ImageFolder.

Both loaders read the same ImageNet-size JPEGs (default 640 files, 500x375, quality 90, about
110 KB each: 1/f colour noise, the spectrum of natural photos) written once in wsolevaluation's
ILSVRC layout, ``<root>/images/ILSVRC/train/<wnid>/<wnid>_<n>.JPEG`` plus
``<root>/metadata/ILSVRC/train/*.txt``; torchvision's ImageFolder reads
``<root>/images/ILSVRC/train`` (the same files, the same labels: sorted WNIDs).

    python benchmarks/bench_loader.py --no-record           # print only
    python benchmarks/bench_loader.py                       # also append to RESULTS.md
    python benchmarks/bench_loader.py --rounds 5 --interleaved 6 --normalize
    python benchmarks/bench_loader.py --memory-only --memory-split 1281167   # an ImageNet-size split

ours:  ``WSOLDataset(load_split(root, "train", dataset="ilsvrc"), build_transform("train", 224, 256),
load_masks=False)`` with ``collate_samples`` and ``seed_worker``, as ``wsol.engine.train_data.train_loader``
builds it (albumentations Resize 256x256 -> RandomCrop 224 -> HorizontalFlip -> float [0, 1]).
tv:    ``ImageFolder(root, Compose([Resize((256, 256)), RandomCrop(224), RandomHorizontalFlip(),
ToTensor()]))`` (the same geometry, [0, 1] floats); ``tv+norm`` adds ``Normalize`` (ImageNet
mean/std; our models normalise inside, so ours has no such step).

Every run is one shuffled epoch through a fresh ``DataLoader`` (same batch size, same workers; worker
start-up included), after one untimed read of every file (warm page cache) and two untimed batches
per loader. The loaders alternate order round by round; the table pairs the two runs of a round.
Per run: wall images/s; CPU seconds of the process and its (reaped) workers (``os.times``), so
``images per CPU-s`` is images per core-second whatever the thread count (OpenCV may use more than
one thread); the load average before the run; peak RSS of the main process (VmHWM, reset before each
run through /proc/self/clear_refs) and, with workers, of the largest worker (VmHWM, which counts pages
shared with the parent) and its private memory (USS, Private_* of smaps_rollup) at the last batch.
``--interleaved E`` adds E epochs with workers = 0 in which the loaders' batches are taken in turn,
so both see the same machine load (the steadiest comparison on a shared machine).

``--memory-split N`` writes metadata for an N-image train split (the real files first, then ids of
files that do not exist) and measures: RSS growth of ``load_split`` (retained, and at the peak of
parsing) and of torchvision's ``(path, label)`` samples list for N files; then one epoch (or
``--memory-batches``) in random order over the whole split with 2 workers and batch
``--memory-batch-size`` (missing images are skipped after a stat), reporting the main process's peak
RSS and the workers' private memory (copy-on-write of the sample list every worker touches).
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader

from wsol.data import WSOLDataset, build_transform, collate_samples, load_split, seed_worker
from wsol.data.synthetic_render import pink_noise_image
from wsol.data.synthetic_wsoleval import imagenet_synsets

try:
    from _record import append_entry, git_commit, machine
except ImportError:  # imported as benchmarks.bench_loader or by path: benchmarks/ is not on sys.path
    from benchmarks._record import append_entry, git_commit, machine

RESULTS = Path(__file__).with_name("RESULTS.md")
GENERATOR = "bench_loader 1/f noise v1"


# ---------------------------------------------------------------- data

def _write_text(path: Path, lines: list[str]) -> None:
    path.write_text("\n".join(lines))  # wsolevaluation: no trailing newline


def make_data(root: Path, classes: int, per_class: int, size: tuple[int, int], quality: int) -> list[str]:
    """Write (or reuse) the JPEGs and the ILSVRC train metadata; returns the image ids."""
    params = {"generator": GENERATOR, "classes": classes, "per_class": per_class, "size": list(size),
              "quality": quality}
    info = root / "bench_loader.json"
    wnids = imagenet_synsets()[:classes]
    ids = [f"train/{w}/{w}_{n}.JPEG" for w in wnids for n in range(per_class)]
    if info.is_file() and json.loads(info.read_text()) == params:
        return ids
    image_root = root / "images" / "ILSVRC"
    rng = np.random.default_rng(0)
    for i, image_id in enumerate(ids):
        path = image_root / image_id
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pink_noise_image(rng, *size)).save(path, "JPEG", quality=quality)
        if i % 100 == 0:
            print(f"  writing images {i}/{len(ids)}", flush=True)
    write_metadata(root, ids, [k // per_class for k in range(len(ids))])
    info.write_text(json.dumps(params))
    return ids


def write_metadata(root: Path, ids: list[str], labels: list[int], split: str = "train") -> Path:
    meta = root / "metadata" / "ILSVRC" / split
    meta.mkdir(parents=True, exist_ok=True)
    _write_text(meta / "image_ids.txt", ids)
    _write_text(meta / "class_labels.txt", [f"{i},{k}" for i, k in zip(ids, labels)])
    _write_text(meta / "image_sizes.txt", [])
    _write_text(meta / "localization.txt", [])
    return meta


def warm_cache(paths) -> int:
    total = 0
    for p in paths:
        with open(p, "rb") as fh:
            total += len(fh.read())
    return total


# ---------------------------------------------------------------- loaders

def ours_dataset(root: Path, image_size: int, resize: int) -> WSOLDataset:
    split = load_split(root, "train", dataset="ilsvrc")
    return WSOLDataset(split, build_transform("train", image_size, resize), load_masks=False)


def tv_dataset(root: Path, image_size: int, resize: int, normalize: bool = False):
    import torchvision.transforms as T
    from torchvision.datasets import ImageFolder

    steps = [T.Resize((resize, resize)), T.RandomCrop(image_size), T.RandomHorizontalFlip(), T.ToTensor()]
    if normalize:
        steps.append(T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)))
    return ImageFolder(str(root / "images" / "ILSVRC" / "train"), transform=T.Compose(steps))


def make_loader(name: str, ds, batch_size: int, workers: int, seed: int) -> DataLoader:
    ours = name == "ours"
    return DataLoader(ds, batch_size=batch_size, shuffle=True, num_workers=workers,
                      collate_fn=collate_samples if ours else None,
                      worker_init_fn=seed_worker if ours else None,
                      generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------- memory probes

def _status_kb(pid: int | str, key: str) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _private_kb(pid: int | str) -> int | None:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            return sum(int(line.split()[1]) for line in fh if line.startswith(("Private_Clean", "Private_Dirty")))
    except OSError:
        return None


def reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _worker_pids(it) -> list[int]:
    return [w.pid for w in getattr(it, "_workers", []) if w.pid is not None]


def _mb(kb) -> float:
    return float("nan") if kb is None else kb / 1024


# ---------------------------------------------------------------- one timed epoch

def run_epoch(name: str, ds, batch_size: int, workers: int, seed: int) -> dict:
    loader = make_loader(name, ds, batch_size, workers, seed)
    gc.collect()
    reset_ok = reset_peak_rss()
    load = os.getloadavg()[0]
    t0, wall0 = os.times(), time.perf_counter()
    it = iter(loader)
    n, last = 0, len(loader) - 1
    worker_hwm = worker_uss = None
    for b, batch in enumerate(it):
        n += batch["image"].shape[0] if isinstance(batch, dict) else batch[0].shape[0]
        if b == last and workers:
            pids = _worker_pids(it)
            worker_hwm = max((_status_kb(p, "VmHWM") or 0) for p in pids) if pids else None
            worker_uss = max((_private_kb(p) or 0) for p in pids) if pids else None
    wall = time.perf_counter() - wall0
    t1 = os.times()
    del it, loader
    cpu = (t1.user - t0.user) + (t1.system - t0.system) + (t1.children_user - t0.children_user) \
        + (t1.children_system - t0.children_system)
    return {"loader": name, "workers": workers, "images": n, "wall": wall, "cpu": cpu, "load": load,
            "main_hwm_mb": _mb(_status_kb("self", "VmHWM")) if reset_ok else float("nan"),
            "worker_hwm_mb": _mb(worker_hwm), "worker_uss_mb": _mb(worker_uss)}


def interleaved(datasets: dict, batch_size: int, epochs: int) -> dict:
    """workers = 0, the loaders' batches taken in turn (ours, tv, ours, tv, ...; the first of each pair
    alternating) so that both see the same machine load: CPU ms (process time) and wall ms per image."""
    cpu = {k: 0.0 for k in datasets}
    wall = {k: 0.0 for k in datasets}
    images = {k: 0 for k in datasets}
    for e in range(epochs):
        its = {k: iter(make_loader(k, ds, batch_size, 0, 100 + e)) for k, ds in datasets.items()}
        names = list(its)
        for b in range(min(len(ds) for ds in datasets.values()) // batch_size):
            for k in (names if b % 2 == 0 else names[::-1]):
                c, t = time.process_time(), time.perf_counter()
                batch = next(its[k])
                cpu[k] += time.process_time() - c
                wall[k] += time.perf_counter() - t
                images[k] += batch["image"].shape[0] if isinstance(batch, dict) else batch[0].shape[0]
    return {k: (1e3 * cpu[k] / images[k], 1e3 * wall[k] / images[k], images[k]) for k in datasets}


def check_same_files(ours: WSOLDataset, tv) -> None:
    mine = {(str(ours.split.image_root / s.image_id), s.label) for s in ours.split.samples}
    theirs = {(str(Path(p)), k) for p, k in tv.samples}
    if mine != theirs:
        raise SystemExit(f"the loaders do not read the same files with the same labels "
                         f"({len(mine ^ theirs)} differ)")


# ---------------------------------------------------------------- memory of a large split

def rss_mb() -> float:
    return _mb(_status_kb("self", "VmRSS"))


def _write_big_metadata(big: Path, ids: list[str], n: int) -> list[str]:
    """ILSVRC train metadata of n ids: the real files first, then ids of files that do not exist."""
    wnids = imagenet_synsets()
    meta = big / "metadata" / "ILSVRC" / "train"
    meta.mkdir(parents=True, exist_ok=True)

    def all_ids():
        yield from ids[:n]
        for k in range(n - len(ids)):
            w = wnids[k % 1000]
            yield f"train/{w}/{w}_x{k:07d}.JPEG"

    label = {w: k for k, w in enumerate(wnids)}
    with open(meta / "image_ids.txt", "w") as f_ids, open(meta / "class_labels.txt", "w") as f_lab:
        for k, i in enumerate(all_ids()):
            sep = "\n" if k else ""
            f_ids.write(sep + i)
            f_lab.write(f"{sep}{i},{label[i.split('/')[1]]}")
    for name in ("image_sizes.txt", "localization.txt"):
        (meta / name).write_text("")
    return list(wnids)


def memory_phase(root: Path, ids: list[str], n: int, batches: int, batch_size: int, image_size: int,
                 resize: int) -> list[str]:
    """Memory of an n-image split: the split objects in the main process, then the workers over an epoch."""
    big = root / f"big-{n}"
    (big / "images").mkdir(parents=True, exist_ok=True)
    link = big / "images" / "ILSVRC"
    if not link.exists():
        link.symlink_to((root / "images" / "ILSVRC").resolve())
    wnids = _write_big_metadata(big, ids, n)
    gc.collect()
    image_root = str(link)
    label = {w: k for k, w in enumerate(wnids)}
    # torchvision's ImageFolder holds samples = [(path, class_index)] (+ targets, imgs = samples)
    before = rss_mb()
    with open(big / "metadata" / "ILSVRC" / "train" / "image_ids.txt") as fh:
        tv_samples = [(os.path.join(image_root, line.rstrip("\n")), label[line.split("/")[1]]) for line in fh]
    tv_targets = [s[1] for s in tv_samples]
    grow_tv = rss_mb() - before
    reset_peak_rss()
    before = rss_mb()
    t = time.perf_counter()
    split = load_split(big, "train", dataset="ilsvrc")
    t_load = time.perf_counter() - t
    gc.collect()
    grow_split, peak = rss_mb() - before, _mb(_status_kb("self", "VmHWM")) - before
    del tv_samples, tv_targets
    gc.collect()
    lines = [f"| load_split, {n:,} ids | {t_load:.1f} s | main RSS +{grow_split:.0f} MB retained "
             f"({grow_split * 2**20 / n:.0f} B/image), +{peak:.0f} MB at the peak of parsing |",
             f"| torchvision ImageFolder's samples + targets lists for {n:,} files (built from the id list, "
             f"no directory scan) | - | main RSS +{grow_tv:.0f} MB ({grow_tv * 2**20 / n:.0f} B/image) |"]
    logging.getLogger("wsol.data.dataset").setLevel(logging.ERROR)  # the missing ids are skipped
    ds = WSOLDataset(split, build_transform("train", image_size, resize), load_masks=False)
    loader = make_loader("ours", ds, batch_size, 2, 0)
    batches = batches or len(loader)
    reset_peak_rss()
    it = iter(loader)
    t = time.perf_counter()
    peak_uss = peak_hwm = real = 0
    for b in range(batches):
        batch = next(it)
        real += batch["image"].shape[0]
        if b % 50 == 49 or b == batches - 1:
            pids = _worker_pids(it)
            peak_uss = max([peak_uss] + [(_private_kb(p) or 0) for p in pids])
            peak_hwm = max([peak_hwm] + [(_status_kb(p, "VmHWM") or 0) for p in pids])
    wall = time.perf_counter() - t
    main_peak = _mb(_status_kb("self", "VmHWM"))
    del it, loader
    what = "one epoch" if batches == len(ds) // batch_size + bool(len(ds) % batch_size) else f"{batches} batches"
    lines.append(f"| ours, 2 workers, batch {batch_size}, {what} in random order over {n:,} ids "
                 f"({real} real images decoded, the rest skipped after a stat) | {wall:.1f} s | main peak RSS "
                 f"{main_peak:.0f} MB; largest worker: private (USS) {_mb(peak_uss):.0f} MB, peak RSS "
                 f"{_mb(peak_hwm):.0f} MB (pages shared with the main process counted) |")
    return lines


# ---------------------------------------------------------------- main

def _paired(runs: list[dict], name: str, w: int, key) -> str:
    """ours / name, run by run of the same round: median [min-max]."""
    by_round = {(r["round"], r["loader"]): key(r) for r in runs if r["workers"] == w}
    ratios = sorted(by_round[(k, "ours")] / by_round[(k, name)] for k, n in by_round if n == name)
    return f"{statistics.median(ratios):.2f} [{ratios[0]:.2f}-{ratios[-1]:.2f}]"


def summarize(runs: list[dict], names: list[str], workers_list: list[int]) -> list[str]:
    header = ["| loader | workers | cores | images/s wall | images/s per core (wall / cores) | images per CPU-s "
              "| ours / this, wall | ours / this, per CPU-s | peak RSS main MB | worker peak RSS / USS MB "
              "| runs, images/s wall |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    rows = []
    for w in workers_list:
        cores = max(w, 1)
        for name in names:
            rs = [r for r in runs if r["loader"] == name and r["workers"] == w]
            ips = statistics.median(r["images"] / r["wall"] for r in rs)
            ipc = statistics.median(r["images"] / r["cpu"] for r in rs)
            wall_ratio = cpu_ratio = ""
            if name != "ours":
                wall_ratio = _paired(runs, name, w, lambda r: r["images"] / r["wall"])
                cpu_ratio = _paired(runs, name, w, lambda r: r["images"] / r["cpu"])
            workers_mem = "-"
            if w:
                workers_mem = (f"{max(r['worker_hwm_mb'] for r in rs):.0f} / "
                               f"{max(r['worker_uss_mb'] for r in rs):.0f}")
            each = ", ".join(f"{r['images'] / r['wall']:.1f}" for r in rs)
            rows.append(f"| {name} | {w} | {cores} | {ips:.1f} | {ips / cores:.1f} | {ipc:.1f} | {wall_ratio} "
                        f"| {cpu_ratio} | {max(r['main_hwm_mb'] for r in rs):.0f} | {workers_mem} | {each} |")
    return header + rows


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", type=Path, default=None,
                   help="data folder (default: $ART_WSOL_CACHE or ~/.cache/art-wsol, bench-loader-...)")
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--per-class", type=int, default=64)
    p.add_argument("--size", type=int, nargs=2, default=(500, 375), metavar=("W", "H"))
    p.add_argument("--quality", type=int, default=90)
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--resize", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=1,
                   help="torch intra-op threads of the main process (default 1: one core where workers = 0; "
                        "DataLoader workers always use 1)")
    p.add_argument("--cv2-threads", type=int, default=None,
                   help="cv2.setNumThreads in the main process, inherited by the workers (default: OpenCV's)")
    p.add_argument("--interleaved", type=int, default=2, metavar="EPOCHS",
                   help="epochs of the workers = 0 comparison with the loaders' batches taken in turn (0: none)")
    p.add_argument("--normalize", action="store_true", help="also time tv with Normalize (tv+norm)")
    p.add_argument("--memory-split", type=int, default=0, help="also measure memory with a split of N ids")
    p.add_argument("--memory-batches", type=int, default=0, help="batches of the memory run (0: one epoch)")
    p.add_argument("--memory-batch-size", type=int, default=256)
    p.add_argument("--memory-only", action="store_true", help="skip the speed runs")
    p.add_argument("--no-record", action="store_true", help="print only; do not append to RESULTS.md")
    p.add_argument("--results", type=Path, default=RESULTS, help="file the table is appended to")
    args = p.parse_args(argv)

    W, H = args.size
    torch.set_num_threads(args.threads)
    if args.cv2_threads is not None:
        cv2.setNumThreads(args.cv2_threads)
    base = Path(os.environ.get("ART_WSOL_CACHE") or Path.home() / ".cache" / "art-wsol")
    root = args.root or base / f"bench-loader-c{args.classes}-n{args.per_class}-{W}x{H}-q{args.quality}"
    ids = make_data(root, args.classes, args.per_class, (W, H), args.quality)
    ours = ours_dataset(root, args.image_size, args.resize)
    tv = tv_dataset(root, args.image_size, args.resize)
    check_same_files(ours, tv)
    datasets = {"ours": ours, "tv": tv}
    if args.normalize:
        datasets["tv+norm"] = tv_dataset(root, args.image_size, args.resize, normalize=True)
    names = list(datasets)
    nbytes = warm_cache(root / "images" / "ILSVRC" / i for i in ids)
    print(f"{len(ids)} images, {nbytes / len(ids) / 1000:.0f} KB mean, {W}x{H}, quality {args.quality}: {root}")
    for name, ds in datasets.items():  # first-call costs (imports, allocator, caches) off the clock
        it = iter(make_loader(name, ds, args.batch_size, 0, 0))
        next(it), next(it)

    lines, runs = [], []
    loads = [os.getloadavg()[0]]
    if not args.memory_only:
        runs = speed_runs(datasets, args)
        loads += [r["load"] for r in runs]
        lines = summarize(runs, names, args.workers)
        if args.interleaved:
            lines += interleaved_table(interleaved(datasets, args.batch_size, args.interleaved))
        print("\n".join(lines))
    if args.memory_split:
        mem = ["| memory, large split | time | memory |", "|---|---|---|"]
        mem += memory_phase(root, ids, args.memory_split, args.memory_batches, args.memory_batch_size,
                            args.image_size, args.resize)
        print("\n".join(mem))
        lines += ([""] if lines else []) + mem
    loads.append(os.getloadavg()[0])
    print(f"load average (1 min) during the runs: {min(loads):.2f} to {max(loads):.2f}")
    if not args.no_record:
        record(args, argv, lines, root, ids, nbytes, loads)


def speed_runs(datasets: dict, args) -> list[dict]:
    runs, names = [], list(datasets)
    for w in args.workers:
        for r in range(args.rounds):
            for name in (names if r % 2 == 0 else names[::-1]):
                res = run_epoch(name, datasets[name], args.batch_size, w, seed=r)
                res["round"] = r
                runs.append(res)
                print(f"  workers {w} round {r} {name:8s} {res['images'] / res['wall']:7.1f} img/s wall, "
                      f"{res['images'] / res['cpu']:7.1f} img/CPU-s, load {res['load']:.2f}, "
                      f"main {res['main_hwm_mb']:.0f} MB, worker {res['worker_hwm_mb']:.0f} / "
                      f"{res['worker_uss_mb']:.0f} MB", flush=True)
    return runs


def interleaved_table(res: dict) -> list[str]:
    lines = ["", "| workers 0, batches taken in turn | CPU ms / image | wall ms / image | images "
             "| ours / this, images per CPU-s |", "|---|---|---|---|---|"]
    for k, (c, w, n) in res.items():
        ratio = "" if k == "ours" else f"{c / res['ours'][0]:.3f}"
        lines.append(f"| {k} | {c:.2f} | {w:.2f} | {n} | {ratio} |")
    return lines


def record(args, argv, lines: list[str], root: Path, ids: list[str], nbytes: int, loads: list[float]) -> None:
    import albumentations
    import PIL
    import torchvision

    W, H = args.size
    command = " ".join(["python", "benchmarks/bench_loader.py"] + list(argv if argv is not None else sys.argv[1:]))
    bullets = [
        f"machine: {machine()}; Python {platform.python_version()}, torch {torch.__version__}, "
        f"torchvision {torchvision.__version__}, albumentations {albumentations.__version__}, "
        f"Pillow {PIL.__version__}, OpenCV {cv2.__version__}; torch threads (main) {torch.get_num_threads()}, "
        f"cv2 threads {cv2.getNumThreads()}",
        f"commit: {git_commit()} (plus the working tree)",
        f"command: `{command}`",
        f"data: {len(ids)} JPEGs, {W}x{H}, quality {args.quality}, {nbytes / len(ids) / 1000:.0f} KB mean "
        f"(1/f colour noise), page cache warm",
        f"load average (1 min) during the runs: {min(loads):.2f} to {max(loads):.2f} ({os.cpu_count()} CPUs, shared)",
    ]
    if not args.memory_only:
        bullets += [
            f"batch {args.batch_size}, {args.rounds} rounds, order alternating; cores = max(workers, 1); images per "
            "CPU-s = images / (user + sys CPU s of the process and its workers); ours / this: ours' rate over "
            "this loader's, the two runs of one round paired, median [min-max] over rounds (> 1: ours faster)",
        ]
    title = ("bench_loader: memory of the training loader on a large split" if args.memory_only else
             "bench_loader: training loader vs torchvision ImageFolder, 224 px train augmentation")
    append_entry(args.results, title, bullets, lines)


if __name__ == "__main__":
    main()
