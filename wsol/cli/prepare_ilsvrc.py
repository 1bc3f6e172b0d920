"""Write wsolevaluation's ILSVRC metadata (train/val/test) from the official ImageNet layout.

    python tools/prepare_ilsvrc.py --out metadata/ILSVRC \\
        --train-dir ILSVRC/train \\
        --val-dir ILSVRC/val (--val-xml-dir val_xml | --val-solution-csv LOC_val_solution.csv) \\
        --imagenetv2-dir ILSVRC/val2 --imagenetv2-boxes ImageNetV2_boxes.txt [--imagenetv2-mapping mapping.txt]

train: labels only (image_sizes.txt and localization.txt empty); test: the official validation
images with every box (x1 = min(xmax, W - 1), y1 = min(ymax, H - 1)); val: ImageNetV2 with its
released boxes, clipped the same way. Give the inputs of the splits to write; others already in
--out stay. Ids are relative to the image root dataset/ILSVRC: train/<wnid>/<file>,
val/<file>, val2/<k>/<file>. Every problem found is listed with its file and line, and nothing
is written then.
"""

from __future__ import annotations

import argparse
import logging
import sys

from wsol.data.ilsvrc import IlsvrcFormatError, convert_imagenet_to_wsoleval


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, metavar="METADATA_DIR", help="output folder (e.g. metadata/ILSVRC)")
    ap.add_argument("--train-dir", help="official train folder: <wnid>/<file>.JPEG")
    ap.add_argument("--val-dir", help="official validation images, flat: ILSVRC2012_val_XXXXXXXX.JPEG")
    boxes = ap.add_mutually_exclusive_group()
    boxes.add_argument("--val-xml-dir", help="bounding-box XMLs of the validation images (ILSVRC2012_bbox_val_v3)")
    boxes.add_argument("--val-solution-csv", help="Kaggle LOC_val_solution.csv (ImageId,PredictionString)")
    ap.add_argument("--synset-mapping", help="Kaggle LOC_synset_mapping.txt: checked to list the classes in order")
    ap.add_argument("--imagenetv2-dir", help="ImageNetV2 threshold0.7 images: <k>/<file>.jpeg, k = 0..999")
    ap.add_argument("--imagenetv2-boxes", help="ImageNetV2_boxes.txt (image_id,x0,y0,x1,y1)")
    ap.add_argument("--imagenetv2-mapping",
                    help="mapping.txt ('k/n.jpeg, k/<sha1>.jpeg'), for the hashed file names of the current tarball")
    ap.add_argument("--overwrite", action="store_true", help="replace splits that already exist in --out")
    ap.add_argument("--no-check-images", action="store_true",
                    help="do not open train images, and take test sizes from the XMLs (ImageNetV2 and "
                         "CSV-annotated test images are still opened for their size)")
    ap.add_argument("--workers", type=int, default=8,
                    help="threads reading image headers and XMLs (default 8; I/O bound, helps most on network disks)")
    ap.add_argument("--no-progress", action="store_true", help="no progress bars")
    return ap


def usage_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with the combination of flags, or None."""
    if (args.val_xml_dir or args.val_solution_csv) and not args.val_dir:
        return "--val-xml-dir / --val-solution-csv need --val-dir (the validation images)"
    if args.val_dir and not (args.val_xml_dir or args.val_solution_csv):
        return "--val-dir needs its boxes: --val-xml-dir or --val-solution-csv"
    if bool(args.imagenetv2_dir) != bool(args.imagenetv2_boxes):
        return "--imagenetv2-dir and --imagenetv2-boxes go together"
    if args.imagenetv2_mapping and not args.imagenetv2_dir:
        return "--imagenetv2-mapping needs --imagenetv2-dir and --imagenetv2-boxes"
    if args.workers < 1:
        return f"--workers must be >= 1, got {args.workers}"
    if not (args.train_dir or args.val_dir or args.imagenetv2_dir):
        return "nothing to convert: give --train-dir, --val-dir and/or --imagenetv2-dir"
    return None


def main(argv: list[str] | None = None) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)
    problem = usage_problem(args)
    if problem:
        ap.error(problem)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        counts = convert_imagenet_to_wsoleval(
            args.out, train_dir=args.train_dir, val_dir=args.val_dir, val_xml_dir=args.val_xml_dir,
            val_solution_csv=args.val_solution_csv, synset_mapping=args.synset_mapping,
            imagenetv2_dir=args.imagenetv2_dir, imagenetv2_boxes=args.imagenetv2_boxes,
            imagenetv2_mapping=args.imagenetv2_mapping, check_images=not args.no_check_images,
            overwrite=args.overwrite, progress=not args.no_progress, workers=args.workers)
    except (IlsvrcFormatError, FileExistsError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for split, c in counts.items():
        print(f"wrote {args.out}/{split}: {c['images']} images, {c['boxes']} boxes, {c['classes']} classes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
