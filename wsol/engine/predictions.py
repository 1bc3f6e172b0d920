"""Class predictions of another classifier, for Top-1 / Top-5 Loc (as PSOL, GenPromp and others
report them: boxes from the WSOL model's map of the GT class, classes from a stronger classifier).

Two formats, image id -> class ids ranked best first (at least 1; 5 for Top-5):

    CSV   image_id,c1,c2,c3,c4,c5          (one line per image; an optional header whose second
                                           field is not a number; '#' comments and blank lines skipped)
    JSON  {"image_id": [c1, c2, c3, c4, c5], ...}
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

__all__ = ["ClassPredictionsError", "read_class_predictions"]


class ClassPredictionsError(ValueError):
    """A class-predictions file that cannot be used; the message names the file (and line)."""


def _ranked(values, where: str, num_classes: int) -> list[int]:
    out = []
    for v in values:
        try:
            c = int(str(v).strip()) if not isinstance(v, bool) else None
        except ValueError:
            c = None
        if c is None or (isinstance(v, float) and not float(v).is_integer()):
            raise ClassPredictionsError(f"{where}: class id {v!r} is not an integer")
        if not 0 <= c < num_classes:
            raise ClassPredictionsError(f"{where}: class id {c} outside 0..{num_classes - 1}")
        out.append(c)
    if not out:
        raise ClassPredictionsError(f"{where}: no class id (expected image_id,c1[,c2,...], best first)")
    if len(set(out)) != len(out):
        raise ClassPredictionsError(f"{where}: a class id appears twice in the ranking {out}")
    return out


def read_class_predictions(path: str | os.PathLike, image_ids: list[str], num_classes: int) -> dict[str, list[int]]:
    """{image id: ranked class ids} for every id of `image_ids`.

    Raises:
        ClassPredictionsError naming the file and line of a malformed entry, a duplicate id, or the
        first ids of the split the file lacks.
    """
    path = Path(path)
    if not path.is_file():
        raise ClassPredictionsError(f"{path}: class-predictions file not found")
    preds: dict[str, list[int]] = {}
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8-sig"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ClassPredictionsError(f"{path}: not valid JSON ({err})") from None
        if not isinstance(data, dict):
            raise ClassPredictionsError(f"{path}: expected a JSON object {{image_id: [class ids, best first]}}, "
                                        f"got {type(data).__name__}")
        for key, ranked in data.items():
            if not isinstance(ranked, list):
                ranked = [ranked]
            preds[key] = _ranked(ranked, f"{path}: {key!r}", num_classes)
    else:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            for lineno, row in enumerate(csv.reader(fh), start=1):
                if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
                    continue
                where = f"{path}:{lineno}"
                if lineno == 1 and len(row) > 1 and not row[1].strip().lstrip("-").isdigit():
                    continue  # a header
                key = row[0].strip()
                if key in preds:
                    raise ClassPredictionsError(f"{where}: duplicate image id {key!r}")
                preds[key] = _ranked([v for v in row[1:] if v.strip()], where, num_classes)
    missing = [i for i in image_ids if i not in preds]
    if missing:
        raise ClassPredictionsError(f"{path}: no prediction for {len(missing)} of {len(image_ids)} images of the "
                                    f"split, e.g. {', '.join(missing[:3])}")
    return {i: preds[i] for i in image_ids}
