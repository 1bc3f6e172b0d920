"""Generate class-conditional images with a (robust) classifier, as Santurkar et al. (REFERENCE.md §9).

    python tools/generate.py --checkpoint RUN --classes 0 3 7 --per-class 8 --out grid.png
        [--data CUB_DIR] [--grain G] [--epsilon E] [--step-size S] [--iterations K] [--seed 0]
        [--show-seeds] [--batch-size B] [--device auto|cpu|cuda|cuda:N]

Seeds come from a Gaussian N(mu, Sigma + 1e-4 I) fitted per class on the checkpoint's training
images (resized to its input side S, average-pooled in GRAIN x GRAIN blocks; the validation
images carved during training are left out), sampled, clamped to [0,1] and block-copied back
to S x S. Targeted L2 PGD then descends CE toward the class: x <- x - step * g/|g|_2, projected
onto the L2 ball of radius epsilon around the seed (units: [0,1] pixels over 3*S*S entries),
clamped to [0,1]; each image keeps its lowest-loss iterate.

Defaults: S > 64 px uses the ImageNet recipe (epsilon 40, step 1, 60 iterations), otherwise
CIFAR's (epsilon 30, step 0.5, 60 iterations); GRAIN = max(1, round(S / 56)), the reference's
pooled side (32 px CIFAR at GRAIN 1, 224 px ImageNet at GRAIN 4): 1 up to 84 px, 4 at 224.

Writes the grid PNG (one row per class, labelled, one column per sample, target-class
probability above each image) and beside it <stem>.pt: images (N,3,S,S), seeds, labels,
target_prob, prob_history (iterations+1, N) and the settings (torch.load(..., weights_only=True)).
The same --seed gives the same images. Prints the mean target probability per class.
"""

from __future__ import annotations

import argparse
import logging
import sys


from wsol.data import CubFormatError, ImageLoadError
from wsol.engine.checkpoint import CheckpointError, load_checkpoint
from wsol.engine.distributed import resolve_device
from wsol.generation import class_summary_lines, generate, save_generation, training_split

PROG = "generate.py"


def parse(argv):
    ap = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True, help="run folder or checkpoint file")
    ap.add_argument("--classes", type=int, nargs="+", help="class indices (default: all classes)")
    ap.add_argument("--per-class", type=int, default=8, help="samples per class (default 8)")
    ap.add_argument("--out", default="grid.png", help="grid PNG; the tensors go to <stem>.pt beside it")
    ap.add_argument("--data", help="CUB folder the seeds are fitted on (default: the checkpoint's dataset)")
    ap.add_argument("--grain", type=int, help="pooling block side for the seed Gaussian "
                    "(default max(1, round(S / 56)): 1 up to 84 px, 2 at 96-140 px, 4 at 224 px)")
    ap.add_argument("--epsilon", type=float, help="L2 radius around the seed in [0,1] pixel units "
                    "(default: 40 for inputs > 64 px (ImageNet recipe), else 30 (CIFAR))")
    ap.add_argument("--step-size", type=float, help="L2 step length (default: 1 for inputs > 64 px, else 0.5)")
    ap.add_argument("--iterations", type=int, help="PGD iterations (default 60)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the Gaussian sampling (default 0)")
    ap.add_argument("--image-size", type=int, help="input side S (default: the checkpoint's)")
    ap.add_argument("--show-seeds", action="store_true", help="show each class's seeds above its images")
    ap.add_argument("--batch-size", type=int, help="images per forward/backward (default: all at once)")
    ap.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda or cuda:N")
    args = ap.parse_args(argv)
    if args.batch_size is not None and args.batch_size < 1:
        ap.error(f"--batch-size must be >= 1, got {args.batch_size}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        model, meta = load_checkpoint(args.checkpoint)
        split = training_split(meta, args.data)
        size = int(args.image_size or meta.get("image_size") or 224)
        classes = args.classes if args.classes is not None else list(range(model.num_classes))
        result = generate(model, split, classes, args.per_class, image_size=size, epsilon=args.epsilon,
                          step_size=args.step_size, steps=args.iterations, grain=args.grain, seed=args.seed,
                          device=resolve_device(args.device), batch_size=args.batch_size)
        result.settings.update(checkpoint=str(args.checkpoint), data=str(args.data or meta.get("data")))
        png, tensors = save_generation(result, args.out, split.class_names, args.show_seeds)
    except (CheckpointError, CubFormatError, ImageLoadError, FileNotFoundError, OSError, ValueError) as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    s = result.settings
    print(f"{s['recipe']} recipe: epsilon {s['epsilon']}, step {s['step_size']}, {s['steps']} iterations, "
          f"grain {s['grain']}, seed {s['seed']}")
    for line in class_summary_lines(result, split.class_names):
        print(line)
    print(f"wrote {png} and {tensors}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
