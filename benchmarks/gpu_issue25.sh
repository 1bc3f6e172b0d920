#!/usr/bin/env bash
# Issue 25 items 4 and 5 in one call on a lent GPU (a few minutes on an H100 / H200): images/s of natural,
# fast and faithful ART against today's faithful step before issue 25 (`art_plain`: PyTorch's own double
# backward), ResNet50 and VGG-GAP at 224 px, batch 32, fp32 (TF32) and bf16 autocast, cudnn benchmark; the
# phase table of the faithful step; peak GPU memory (max allocated) per method, and a larger ResNet50 batch
# for the per-image slope; last, ResNet50 in channels_last. torch.compile is not among them: its graphs
# refuse a double backward ("torch.compile with aot_autograd does not currently support double backward",
# torch 2.14.1), which every ART step takes. Each table is appended to RESULTS (first argument; default
# benchmarks/RESULTS.md, e.g. "$OUT/RESULTS.md" on the device machine, then merged by hand). A row that
# fails (out of memory, say) is reported and the rest still run.
#
#     bash benchmarks/gpu_issue25.sh "$OUT/RESULTS.md"
#
# Needs torch, torchvision, opencv, pillow, pyyaml, safetensors and tqdm, all in the lent machines' image (as
# read 2026-11-17); albumentations is imported only where a data pipeline is built, which this never does.
set -uo pipefail
cd "$(dirname "$0")/.."
RESULTS=${1:-benchmarks/RESULTS.md}
PY=${PYTHON:-python3}
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD PYTHONUNBUFFERED=1
B="$PY benchmarks/bench_train_step.py --size 224 --classes 200 --device cuda --tf32 --cudnn-benchmark --results $RESULTS"
status=0
run() { echo "== $*"; $B "$@" || { echo "!! failed: $*"; status=1; }; }
run --arch resnet50 --batch 32 --amp none bf16 --methods natural art_fast art art_plain --iters 5 --warmup 2
run --arch vgg_gap --batch 32 --amp none bf16 --methods natural art_fast art art_plain --iters 5 --warmup 2
run --arch resnet50 --batch 32 --methods natural art art_plain --phases --iters 3 --warmup 1
run --arch resnet50 --batch 64 --methods art --iters 1 --warmup 1
run --arch resnet50 --batch 32 --channels-last --amp none bf16 --methods natural art art_plain --iters 3 --warmup 2
exit $status
