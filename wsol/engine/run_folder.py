"""A run folder's bookkeeping: metrics.jsonl, whether a folder holds a finished or a stopped run
of a given config (callers reuse or resume only runs of the config they asked for), and the
guards that keep a new run from mixing its files into an old one's."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from wsol.config import Config, ConfigError, config_to_dict

__all__ = ["RunConfigMismatch", "RunExists", "append_jsonl", "truncate_metrics", "finished_run", "resumable_run",
           "check_new_run", "clear_run", "discard_unstarted"]

log = logging.getLogger(__name__)

# what train() and the evaluation tools write into a run folder (nothing else is ever deleted)
RUN_FILES = ("config.yaml", "checkpoint-*.json", "checkpoint-*.safetensors", "train-state-*.pt", "metrics.jsonl",
             "report.json", "eval-*.json", "eval-*.png", ".tmp-*")


def append_jsonl(path: Path, record: dict) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")


def truncate_metrics(path: Path, epochs_done: int) -> None:
    """Drop metrics lines of epochs after the checkpoint we resume from (written before a crash)."""
    if not path.is_file():
        return
    keep = [line for line in path.read_text().splitlines() if line.strip()
            and json.loads(line).get("epoch", 0) <= epochs_done]
    path.write_text("".join(line + "\n" for line in keep))


class RunConfigMismatch(ConfigError):
    """A run folder holds a finished run whose config differs from the one asked for."""


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in d.items():
        if isinstance(value, dict) and value:
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _config_diff(run: Path, cfg: Config) -> list[str]:
    """Settings (dotted keys) where run/config.yaml differs from `cfg`, shown as 'key: there, asked'."""
    import yaml

    saved = _flatten(yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8")) or {})
    wanted = _flatten(json.loads(json.dumps(config_to_dict(cfg))))
    keys = sorted(saved.keys() | wanted.keys())
    # the settings of methods the run does not use do not matter (and a method registered after
    # the run was made adds a section its config.yaml never had)
    used = {saved.get("method.name"), wanted.get("method.name")}
    keys = [k for k in keys if not (k.startswith("method.") and k.count(".") >= 2 and k.split(".")[1] not in used)]
    return [f"{k}: {saved.get(k)!r} there, {wanted.get(k)!r} asked" for k in keys if saved.get(k) != wanted.get(k)]


def _mismatch(run: Path, what: str, diff: list[str]) -> RunConfigMismatch:
    return RunConfigMismatch(f"{run} holds a {what} run with another config ({', '.join(diff[:6])}"
                             f"{', ...' if len(diff) > 6 else ''}); delete it or choose another output folder")


def finished_run(out_dir: str | os.PathLike, cfg: Config) -> dict | None:
    """The report of the run in `out_dir` if it finished training with the effective config `cfg`.

    None when `out_dir` holds no finished run (no report.json: never started, or stopped part-way,
    see :func:`resumable_run`). Raises RunConfigMismatch, naming the keys that differ, when it
    finished with another config, so a caller never silently reuses a run it did not ask for.
    """
    run = Path(out_dir)
    if not (run / "report.json").is_file() or not (run / "config.yaml").is_file():
        return None
    diff = _config_diff(run, cfg)
    if diff:
        raise _mismatch(run, "finished", diff)
    return json.loads((run / "report.json").read_text())


def resumable_run(out_dir: str | os.PathLike, cfg: Config) -> bool:
    """True when `out_dir` holds a run of `cfg` that stopped part-way (a checkpoint-last, no
    report.json): ``train(None, out_dir, resume=True)`` continues it. Raises RunConfigMismatch
    when that partial run has another config."""
    run = Path(out_dir)
    if (run / "report.json").is_file() or not (run / "checkpoint-last.json").is_file() \
            or not (run / "config.yaml").is_file():
        return False
    diff = _config_diff(run, cfg)
    if diff:
        raise _mismatch(run, "stopped", diff)
    return True


class RunExists(ConfigError):
    """A new run was asked for in a folder that already holds one."""


def _run_files(run: Path) -> list[Path]:
    if not run.is_dir():
        return []
    return sorted({p for pattern in RUN_FILES for p in run.glob(pattern) if p.is_file()})


def check_new_run(run: Path, overwrite: bool) -> None:
    """Refuse to start a new run in `run` when it holds one (anything beyond a config.yaml of a run
    that never finished an epoch), unless `overwrite` (then :func:`clear_run` empties it later)."""
    held = [p.name for p in _run_files(run) if p.name != "config.yaml"]
    if held and not overwrite:
        shown = ", ".join(held[:4]) + (", ..." if len(held) > 4 else "")
        raise RunExists(f"{run}: this folder already holds a training run ({shown}); pass --resume {run} to "
                        "continue it, or --overwrite to replace it (its checkpoints, config, metrics and "
                        "reports are deleted)")


def clear_run(run: Path) -> None:
    """Delete the files a run wrote in `run` (RUN_FILES); other files and the folder stay."""
    n = _delete_run_files(run)
    if n:
        log.warning("%s: deleted %d file(s) of the run that was there (--overwrite)", run, n)


def discard_unstarted(run: Path, created: bool) -> None:
    """After a new run failed before its first checkpoint: delete what it wrote, and the folder
    when this run created it (and it is empty), so no folder is left holding only config.yaml."""
    if (run / "checkpoint-last.json").is_file():
        return
    n = _delete_run_files(run)
    if created and run.is_dir() and not any(run.iterdir()):
        run.rmdir()
        log.warning("removed %s: the run stopped before its first checkpoint", run)
    elif n:
        log.warning("%s: deleted the %d file(s) of a run that stopped before its first checkpoint", run, n)


def _delete_run_files(run: Path) -> int:
    files = _run_files(run)
    for path in files:
        path.unlink(missing_ok=True)
    return len(files)
