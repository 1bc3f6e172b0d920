"""The training loop behind tools/train_wsol.py: data, model, method, optimizer, epochs, checkpoints.

    cfg = load_config("configs/demo/base.yaml", overrides=["method.name=art", "train.epochs=2"])
    summary = train(cfg, "runs/demo")                   # or train(None, "runs/demo", resume=True)

A run folder holds config.yaml (the effective config), checkpoint-last.* and checkpoint-best.*
(safetensors + JSON), train-state-<epoch>.pt (optimizer, scheduler, RNG states, referenced
from checkpoint-last.json), metrics.jsonl (one line per epoch) and report.json.

Nothing is lost: a new run refuses a folder that holds one (unless `overwrite`), config.yaml is
written once the data and model are ready, a run that stops before its first checkpoint leaves
no folder behind, and weights holding NaN or Inf are never saved (training stops, naming the
last checkpoint, which is finite).

Reproducibility: every epoch's shuffling and augmentation are seeded from (seed, epoch, rank),
and the torch / numpy / python RNG states are saved with each checkpoint, so a run resumed from
its last checkpoint ends with the same weights and metrics as one that never stopped.

The data side (synthetic cache, splits, loaders, epoch seeding) is in :mod:`.train_data`, the
run folder's bookkeeping (metrics.jsonl, finished / stopped run checks) in :mod:`.run_folder`.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from pathlib import Path

import torch
from tqdm import tqdm

from wsol.config import Config, ConfigError, config_to_dict, load_config, save_config
from wsol.data.datasets import WSOL_DATASETS
from wsol.methods import build_method
from wsol.models import PretrainedWeightsMissing, build_model

from .checkpoint import (CheckpointError, NonFiniteCheckpoint, read_checkpoint_meta, resolve_checkpoint,
                         save_checkpoint)
from .distributed import (DistInfo, all_reduce_sum, barrier, broadcast_buffers, broadcast_parameters,
                          cleanup_distributed, gather_objects, init_distributed, resolve_device,
                          sync_gradients)
from .run_folder import (RunConfigMismatch, RunExists, append_jsonl, check_new_run, clear_run, discard_unstarted,
                         finished_run, resumable_run, truncate_metrics)
from .train_data import prepare_data, seed_epoch, synthetic_root, train_loader, val_loader
from .train_state import (RunState, load_train_state, rng_state, save_train_state, seed_everything, select_better,
                          set_rng_state)
from .validate import validate

# prepare_data, synthetic_root (train_data) and the run-folder checks (run_folder) are re-exported:
# callers of train() use them to find its data and to reuse or resume its runs.
__all__ = ["TrainingError", "train", "build_training_model", "build_optimizer", "prepare_data", "synthetic_root",
           "RunConfigMismatch", "RunExists", "finished_run", "resumable_run"]

log = logging.getLogger(__name__)


class TrainingError(RuntimeError):
    """Training cannot go on (non-finite loss, failed checkpoint write, data/model mismatch)."""


# -- model and optimizer ---------------------------------------------------------------------------

def build_training_model(cfg: Config, num_classes: int, method_options: dict | None = None) -> torch.nn.Module:
    """build_model from `cfg.model` plus the method's `model_options()` (ADL layers, a method's
    heads); pretrained weights missing -> error unless allow_random_init."""
    m = cfg.model
    options = dict(method_options or {})
    adl = m.adl or bool(options.pop("adl", False))
    kwargs = {**m.kwargs, **options}
    if adl:
        kwargs.update(adl_drop_rate=m.adl_drop_rate, adl_gamma=m.adl_gamma, adl_positions=m.adl_positions)
    try:
        model = build_model(m.arch, num_classes, pretrained=m.pretrained, adl=adl,
                            pretrained_classifier=m.pretrained_classifier, **kwargs)
        if m.pretrained and m.arch.startswith("timm:") and kwargs.get("architecture_type", "cam") != "cam":
            _timm_weights_into(model, build_model(m.arch, num_classes, pretrained=m.pretrained, **m.kwargs))
        return model
    except PretrainedWeightsMissing as err:
        if not m.allow_random_init:
            raise TrainingError(f"{err}\n(set model.pretrained=false, or model.allow_random_init=true to "
                                "train from random init when the weights are absent)") from err
        log.warning("%s -- continuing from RANDOM INIT because model.allow_random_init is set", err)
        return build_model(m.arch, num_classes, pretrained=False, adl=adl, **kwargs)
    except TypeError as err:
        raise ConfigError(f"model.kwargs {m.kwargs}: not accepted by arch {m.arch!r} ({err})") from err
    except ValueError as err:
        if m.pretrained_classifier and "pretrained_classifier" in str(err):
            raise ConfigError(str(err)) from err
        if "architecture_type" in str(err) or "supports" in str(err):
            raise ConfigError(f"method {cfg.method.name!r} with model.arch {m.arch!r}: {err}") from err
        raise


def _timm_weights_into(model: torch.nn.Module, plain: torch.nn.Module) -> None:
    """A method's model on a timm backbone (e.g. FSL's): build_model loads timm's weights only while
    building the plain timm model, so copy them from `plain` (that model, weights loaded); the
    method's own layers, absent from `plain`, keep their initialisation."""
    missing, unexpected = model.load_state_dict(plain.state_dict(), strict=False)
    if unexpected:
        raise ConfigError(f"model.arch {plain.arch!r}: the method's model does not hold the pretrained "
                          f"tensors {sorted(unexpected)[:5]}")
    log.info("loaded the pretrained %s weights into the method's model (new layers: %s)", plain.arch,
             ", ".join(sorted({k.split('.')[0] for k in missing})) or "none")


def build_optimizer(model: torch.nn.Module, cfg: Config):
    """SGD (Nesterov) with the new layers at lr * new_layer_lr_mult, and the step-decay schedule."""
    o = cfg.optim
    old, new = model.split_parameters()
    groups = [{"params": old, "lr": o.lr, "name": "backbone"},
              {"params": new, "lr": o.lr * o.new_layer_lr_mult, "name": "new_layers"}]
    groups = [g for g in groups if g["params"]]
    opt = torch.optim.SGD(groups, lr=o.lr, momentum=o.momentum, nesterov=o.nesterov and o.momentum > 0,
                          weight_decay=o.weight_decay)
    if o.lr_milestones:
        sched = torch.optim.lr_scheduler.MultiStepLR(opt, [int(m) for m in o.lr_milestones], o.lr_gamma)
    else:
        sched = torch.optim.lr_scheduler.StepLR(opt, max(1, o.lr_step), o.lr_gamma)
    return opt, sched


# -- the trainer --------------------------------------------------------------------------------------

class Trainer:
    """One training run (see module docstring). Use :func:`train`."""

    def __init__(self, cfg: Config, run: Path, info: DistInfo, resume: bool) -> None:
        self.cfg, self.run, self.info = cfg, run, info
        self.device = _device(cfg.train.device, info)
        self.method = build_method(cfg.method.name, cfg.method)
        _check_selection(cfg)
        self.root, self.train_split, self.val_split, bad = prepare_data(cfg, info)
        self._method_splits()
        self.class_names = self.train_split.class_names
        num_classes = self.train_split.num_classes
        if cfg.model.num_classes is not None and cfg.model.num_classes != num_classes:
            raise ConfigError(f"model.num_classes is {cfg.model.num_classes} but the data at {self.root} has "
                              f"{num_classes} classes")
        seed_everything(cfg.train.seed)
        self.model = build_training_model(cfg, num_classes, self.method.model_options()).to(self.device)
        self.optimizer, self.scheduler = build_optimizer(self.model, cfg)
        self.state = RunState()
        if resume:
            self._resume(num_classes)
        else:
            seed_everything(cfg.train.seed + info.rank)
        for image, error in bad:
            self.state.skipped.setdefault(image, error)
        broadcast_parameters(self.model, info)
        # a method trained on localization labels reads the dataset's own kind: boxes (CUB, ILSVRC; CUB's
        # segmentation masks are not the protocol's labels) or masks (OpenImages)
        spec = WSOL_DATASETS.get(cfg.data.dataset)
        masks = self.method.supervision == "localization" and spec is not None and spec.localization == "masks"
        self.loader, self.sampler = train_loader(cfg, self.train_split, info, load_masks=masks)
        self.val_loader = val_loader(cfg, self.val_split)

    def _method_splits(self) -> None:
        """The method's own (train, val) splits (`TrainingMethod.splits`; FSL: part of val and its
        held-out rest)."""
        name = self.cfg.method.name
        try:
            self.train_split, self.val_split = self.method.splits(self.train_split, self.val_split)
        except ValueError as err:
            raise ConfigError(f"method {name!r} cannot use the data at {self.root}: {err}") from err
        if self.method.supervision != "image" and self.info.is_main:
            same = self.train_split is self.val_split or (
                [s.image_id for s in self.train_split.samples] == [s.image_id for s in self.val_split.samples])
            log.info("method %s trains on the %s labels of %d images (%s) and validates on %d images (%s)%s",
                     name, self.method.supervision, len(self.train_split), self.train_split.name,
                     len(self.val_split), self.val_split.name, " -- the same images" if same else "")

    # ---- resume
    def _resume(self, num_classes: int) -> None:
        meta = read_checkpoint_meta(self.run / "checkpoint-last")
        if meta["num_classes"] != num_classes:
            raise ConfigError(f"{self.run}/checkpoint-last.json: the run has {meta['num_classes']} classes but "
                              f"the data at {self.root} has {num_classes}")
        from wsol.engine.checkpoint import load_checkpoint

        saved, _ = load_checkpoint(self.run / "checkpoint-last", arch=self.cfg.model.arch, num_classes=num_classes)
        self.model.load_state_dict(saved.state_dict())
        state = load_train_state(self.run, meta)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.state = RunState(**state["run"])
        rngs = state["rng"]
        set_rng_state(rngs[self.info.rank] if self.info.rank < len(rngs) else rngs[0])
        truncate_metrics(self.run / "metrics.jsonl", self.state.epoch)
        if self.info.is_main:
            log.info("resumed %s at epoch %d of %d", self.run, self.state.epoch, self.cfg.train.epochs)

    # ---- one epoch
    def train_epoch(self, epoch: int) -> dict:
        cfg, info = self.cfg, self.info
        self.model.train()
        seed_epoch(self.loader, self.sampler, cfg, epoch, info)
        sums = {"loss": 0.0, "correct": 0.0, "n": 0.0}
        t0, seen = time.perf_counter(), 0
        bar = tqdm(self.loader, desc=f"epoch {epoch + 1}/{cfg.train.epochs}", unit="batch",
                   disable=not info.is_main, dynamic_ncols=True, leave=False)
        for i, batch in enumerate(bar):
            if cfg.train.max_steps_per_epoch is not None and i >= cfg.train.max_steps_per_epoch:
                break
            for s in batch["skipped"]:
                self.state.skipped[s["image_id"]] = s["error"]
            if not len(batch["label"]):
                continue
            out = self._step(batch, epoch, i)
            if out is None:
                continue
            out, y = out
            n = len(y)
            sums["loss"] += out.loss.item() * n
            sums["correct"] += (out.logits.argmax(1) == y).sum().item()
            sums["n"] += n
            for k, v in out.stats.items():
                sums[k] = sums.get(k, 0.0) + v * n
            seen += n
            if info.is_main and (i % max(1, cfg.train.log_every) == 0):
                rate = seen * info.world_size / max(time.perf_counter() - t0, 1e-9)
                bar.set_postfix(loss=f"{sums['loss'] / sums['n']:.4f}",
                                acc=f"{100 * sums['correct'] / sums['n']:.1f}", img_s=f"{rate:.1f}")
        bar.close()
        keys = sorted(sums)
        total = dict(zip(keys, all_reduce_sum([sums[k] for k in keys], info)))
        elapsed = time.perf_counter() - t0
        n = max(total.pop("n"), 1.0)
        res = {"train_" + k: v / n for k, v in total.items() if k != "correct"}
        res.update(train_top1_acc=100 * total["correct"] / n, images_per_s=n / max(elapsed, 1e-9),
                   epoch_time_s=elapsed, lr=[g["lr"] for g in self.optimizer.param_groups])
        return res

    def _step(self, batch: dict, epoch: int, i: int):
        x = batch["image"].to(self.device, non_blocking=True)
        y = batch["label"].to(self.device, non_blocking=True)
        try:
            extra = self.method.targets(batch) or {}
        except ValueError as err:
            raise TrainingError(f"method {self.cfg.method.name!r}, epoch {epoch + 1}, step {i + 1}: {err}") from err
        extra = {k: v.to(self.device, non_blocking=True) if torch.is_tensor(v) else v for k, v in extra.items()}
        broadcast_buffers(self.model, self.info)
        with _autocast(self.cfg.train.amp, self.device):
            out = self.method.step(self.model, x, y, **extra)
        finite = all_reduce_sum([float(torch.isfinite(out.loss).item())], self.info)[0] == self.info.world_size
        if not finite:
            self._nonfinite(out, epoch, i)
            return None
        self.optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        sync_gradients(self.model, self.info)
        if self.cfg.optim.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.optim.grad_clip)
        self.optimizer.step()
        self.state.global_step += 1
        out.loss = out.loss.detach()
        return out, y

    def _nonfinite(self, out, epoch: int, i: int) -> None:
        self.state.nonfinite += 1
        stats = ", ".join(f"{k}={v:.4g}" for k, v in out.stats.items())
        where = f"epoch {epoch + 1}, step {i + 1}"
        if self.state.nonfinite > self.cfg.train.nan_tolerance:
            raise TrainingError(f"non-finite loss ({out.loss.item()}; {stats}) at {where}; training stopped, "
                                f"{self._last_good()}. Lower optim.lr, or set train.nan_tolerance to skip such steps.")
        log.warning("non-finite loss at %s (%s); step skipped (%d of %d tolerated)", where, stats,
                    self.state.nonfinite, self.cfg.train.nan_tolerance)

    # ---- checkpoints and logs
    def _last_good(self) -> str:
        """Which checkpoint the run can go on from (checkpoint-last: never written with NaN or Inf)."""
        last = self.run / "checkpoint-last.json"
        try:
            epoch = read_checkpoint_meta(last).get("epoch")
        except CheckpointError:
            return "no checkpoint was written yet"
        return f"the last good checkpoint is {last} (epoch {epoch})"

    def _checkpoint(self, epoch: int, metrics: dict, is_best: bool) -> None:
        info = self.info
        rngs = gather_objects(rng_state(), info)
        if not info.is_main:
            return
        name = f"train-state-{epoch + 1:04d}.pt"
        save_train_state(self.run / name, {
            "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
            "rng": rngs, "run": vars(self.state)})
        common = dict(class_names=self.class_names, image_size=self.cfg.data.image_size,
                      config=config_to_dict(self.cfg))
        extra = {"epoch": epoch + 1, "metrics": metrics, "method": self.cfg.method.name, "train_state": name,
                 "data": str(self.root), "world_size": info.world_size}
        try:
            save_checkpoint(self.run / "checkpoint-last", self.model, **common, extra=extra)
            if is_best:
                save_checkpoint(self.run / "checkpoint-best", self.model, **common,
                                extra=extra | {"selected_by": self.cfg.val.select_metric})
        except NonFiniteCheckpoint as err:
            (self.run / name).unlink(missing_ok=True)
            raise TrainingError(f"the weights went non-finite in epoch {epoch + 1}: {err}; training stopped, "
                                f"{self._last_good()}. Lower optim.lr, or set optim.grad_clip.") from err
        except CheckpointError as err:
            (self.run / name).unlink(missing_ok=True)
            raise TrainingError(f"{err}; training stopped at epoch {epoch + 1}") from err
        for old in self.run.glob("train-state-*.pt"):
            if old.name != name:
                old.unlink(missing_ok=True)

    def fit(self) -> dict:
        cfg, info = self.cfg, self.info
        last_val: dict = {}
        for epoch in range(self.state.epoch, cfg.train.epochs):
            metrics = {"epoch": epoch + 1, **self.train_epoch(epoch)}
            self.scheduler.step()
            if (epoch + 1) % max(1, cfg.val.every) == 0 or epoch + 1 == cfg.train.epochs:
                last_val = self._validate(epoch)
                metrics.update({f"val_{k}": v for k, v in last_val.items()})
            value = _selection_value(cfg.val.select_metric, last_val)
            is_best = value is not None and select_better(cfg.val.select_metric, value, self.state.best_value)
            if is_best:
                self.state.best_value, self.state.best_epoch = value, epoch + 1
            self.state.epoch = epoch + 1
            metrics["skipped_images"] = len(self.state.skipped)
            if info.is_main:
                append_jsonl(self.run / "metrics.jsonl", metrics)
                log.info("epoch %d/%d: %s", epoch + 1, cfg.train.epochs, _brief(metrics))
            self._checkpoint(epoch, metrics, is_best)
        return self._report(last_val)

    def _validate(self, epoch: int) -> dict:
        result: dict = {}
        v = self.cfg.val
        pgd = v.pgd_every > 0 and ((epoch + 1) % v.pgd_every == 0 or epoch + 1 == self.cfg.train.epochs)
        if self.info.is_main:
            result = validate(self.model, self.val_loader, v, self.cfg.data.image_size, self.device, pgd=pgd)
            self.model.train()
        result = gather_objects(result, self.info)[0]
        for image, error in result.pop("skipped_images", {}).items():
            self.state.skipped.setdefault(image, error)
        return result

    def _ranks_in_sync(self) -> bool:
        """Whether every rank ended with the same parameters (gradient averaging worked)."""
        sums = [float(p.detach().double().sum()) for p in self.model.parameters()]
        everyone = gather_objects(sums, self.info)
        return all(s == everyone[0] for s in everyone)

    def _report(self, last_val: dict) -> dict:
        report = {"run": str(self.run), "epochs": self.state.epoch, "method": self.cfg.method.name,
                  "arch": self.cfg.model.arch, "data": str(self.root), "selected_by": self.cfg.val.select_metric,
                  "best_epoch": self.state.best_epoch, "best_value": self.state.best_value,
                  "final_val": last_val, "nonfinite_steps": self.state.nonfinite,
                  "world_size": self.info.world_size, "ranks_in_sync": self._ranks_in_sync(),
                  "skipped_images": [{"image_id": k, "error": v} for k, v in sorted(self.state.skipped.items())]}
        if self.info.is_main:
            (self.run / "report.json").write_text(json.dumps(report, indent=2))
            if self.state.skipped:
                log.warning("%d unreadable image(s) were skipped; listed in %s/report.json",
                            len(self.state.skipped), self.run)
        return report


# -- helpers -------------------------------------------------------------------------------------------

def _device(name: str, info: DistInfo) -> torch.device:
    try:
        return resolve_device(name, info.local_rank)
    except ValueError as err:
        raise ConfigError(f"train.device: {err}") from None


def _autocast(amp: str, device: torch.device):
    if amp == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return torch.autocast(device_type=device.type, enabled=False)


def _check_selection(cfg: Config) -> None:
    """val.select_metric must be one validation computes for this data."""
    from wsol.data.datasets import WSOL_DATASETS

    metric = cfg.val.select_metric
    spec = WSOL_DATASETS.get(cfg.data.dataset)
    kind = None if spec is None else spec.localization
    for suffix, needs, other in (("_loc", "boxes", "_pxap"), ("_pxap", "masks", "_loc")):
        if metric.endswith(suffix) and kind != needs:
            hint = (f"use <saliency>{other}, " if kind is not None else "use ") + "top1_acc, loss, pgd_acc or last"
            raise ConfigError(f"val.select_metric={metric!r} needs {needs}, and data.dataset={cfg.data.dataset!r} "
                              f"has {kind or 'no localization'}; {hint}")
        if metric.endswith(suffix) and metric[:-len(suffix)] not in cfg.val.saliencies:
            raise ConfigError(f"val.select_metric={metric!r} but val.saliencies is {cfg.val.saliencies}; "
                              f"add {metric[:-len(suffix)]!r} to val.saliencies")
    if metric == "pgd_acc" and cfg.val.pgd_every <= 0:
        raise ConfigError("val.select_metric='pgd_acc' needs val.pgd_every > 0 (epochs between PGD checks)")


def _selection_value(metric: str, val: dict) -> float | None:
    if metric == "last":
        return 0.0
    v = val.get(metric)
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def _brief(metrics: dict) -> str:
    keys = ("train_loss", "train_top1_acc", "val_top1_acc", "val_grad_loc", "val_cam_loc", "images_per_s")
    return ", ".join(f"{k}={metrics[k]:.4g}" for k in keys if isinstance(metrics.get(k), (int, float)))



def train(cfg: Config | None, out_dir: str | os.PathLike, resume: bool = False,
          overrides: list | None = None, overwrite: bool = False) -> dict:
    """Train per `cfg` into `out_dir` (or resume the run there; its config.yaml <- `overrides`).

    A new run refuses an `out_dir` that holds a run (RunExists) unless `overwrite`, which deletes
    that run's files once the new run's data and model are ready. A new run that stops before its
    first checkpoint deletes what it wrote (and the folder, if it made it).
    Returns the run report (also written to report.json). Raises ConfigError for bad settings,
    TrainingError when training cannot go on.
    """
    run = Path(out_dir)
    info = init_distributed(cfg.train.device if cfg is not None else "auto")
    created, wrote = not run.exists(), False
    try:
        if resume:
            resolve_checkpoint(run / "checkpoint-last")
            cfg = load_config(run / "config.yaml", overrides=overrides)
        elif cfg is None:
            raise ValueError("train() needs a config unless resume=True")
        else:
            check_new_run(run, overwrite)
        trainer = Trainer(cfg, run, info, resume)
        if info.is_main:
            if overwrite:
                clear_run(run)
            run.mkdir(parents=True, exist_ok=True)
            wrote = True
            save_config(cfg, run / "config.yaml")
        barrier(info)
        return trainer.fit()
    except BaseException:
        if wrote and not resume:
            discard_unstarted(run, created)
        raise
    finally:
        cleanup_distributed(info)
