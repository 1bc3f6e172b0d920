"""FSL (few-shot fully supervised localization, Choe et al. CVPR 2020): the model (architecture_type
"fsl"), the method's targets, loss and splits, and a run through train() and tools/evaluate_wsol.py."""

from __future__ import annotations

import importlib.util
import json
import logging
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn

from wsol.attribution import cam, saliency_maps
from wsol.config import ConfigError, load_config
from wsol.data import Sample, WSOLSplit, load_split
from wsol.data.synthetic import make_synthetic_cub
from wsol.engine.checkpoint import load_checkpoint, save_checkpoint
from wsol.engine.train import build_optimizer, train
from wsol.methods import build_method
from wsol.models import build_model, list_architecture_types
from wsol.models.fsl import FSLMixin

REPO = Path(__file__).resolve().parents[1]
ARCHS = ["resnet_tiny", "vgg_gap_tiny", "timm:resnet10t"]


def _timm_ok(arch: str) -> bool:
    if not arch.startswith("timm:"):
        return True
    try:
        import timm
    except ImportError:
        return False
    return timm.is_model(arch[5:])


# -- the model ------------------------------------------------------------------------------------

@pytest.mark.parametrize("arch", ARCHS)
def test_model_builds_and_round_trips(arch, tmp_path):
    if not _timm_ok(arch):
        pytest.skip(f"{arch} is not available")
    assert "fsl" in list_architecture_types()
    torch.manual_seed(0)
    model = build_model(arch, 3, architecture_type="fsl").eval()
    plain = build_model(arch, 3)
    assert isinstance(model, FSLMixin) and isinstance(model, type(plain))
    assert type(model) is type(build_model(arch, 3, architecture_type="fsl"))     # the subclass is cached
    assert set(model.state_dict()) == set(plain.state_dict()) | {"foreground.weight", "foreground.bias"}
    assert model.foreground.weight.shape == (1, model.feature_channels, 1, 1)
    head = model.foreground
    assert float(head.bias.detach().abs().max()) == 0.0 and 0 < float(head.weight.detach().std()) < 0.02
    assert model.new_layer_prefixes == (*plain.new_layer_prefixes, "foreground")
    assert model.build_args["architecture_type"] == "fsl"
    new = {n for n, p in model.named_parameters() if model.is_new_parameter(n)}
    assert {"foreground.weight", "foreground.bias"} <= new
    opt, _ = build_optimizer(model, load_config(None, ["optim.new_layer_lr_mult=10"]))
    new_group = next(g for g in opt.param_groups if g["name"] == "new_layers")
    assert any(p is model.foreground.weight for p in new_group["params"])

    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        logits, fg = model.fsl_outputs(x)
        assert torch.equal(model(x), logits)
    save_checkpoint(tmp_path / "ck", model, class_names=["a", "b", "c"], image_size=32)
    loaded, meta = load_checkpoint(tmp_path / "ck", arch=arch, num_classes=3)
    assert type(loaded) is type(model) and meta["build_args"]["architecture_type"] == "fsl"
    with torch.no_grad():
        l2, f2 = loaded.fsl_outputs(x)
    assert torch.equal(l2, logits) and torch.equal(f2, fg)


def test_class_maps_is_the_foreground_conv_of_the_features():
    torch.manual_seed(0)
    model = build_model("resnet_tiny", 4, architecture_type="fsl").eval()
    x = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        expected = model.foreground(model.features(x)).squeeze(1)
        for target in (None, torch.tensor([0, 1, 2]), torch.tensor([3, 3, 3])):
            maps, logits = model.class_maps(x, target)
            assert torch.allclose(maps, expected, atol=1e-6) and torch.allclose(logits, model(x), atol=1e-6)
    assert torch.allclose(cam(model, x, torch.tensor([1, 2, 3])), expected, atol=1e-6)   # the "cam" saliency
    maps, _ = saliency_maps(model, x, torch.tensor([0, 1, 2]), "cam")
    assert maps.shape == (3, 32, 32) and 0 <= float(maps.min()) and float(maps.max()) <= 1


def test_pretrained_file_fills_the_trunk_and_leaves_the_head(tmp_path):
    torch.manual_seed(1)
    donor = build_model("resnet_tiny", 3)
    save_file({k: v.contiguous() for k, v in donor.state_dict().items()}, str(tmp_path / "w.safetensors"))
    torch.manual_seed(2)
    model = build_model("resnet_tiny", 3, pretrained=tmp_path / "w.safetensors", architecture_type="fsl")
    own = model.state_dict()
    assert torch.equal(own["layer1.0.conv1.weight"], donor.state_dict()["layer1.0.conv1.weight"])
    assert not torch.equal(own["fc.weight"], donor.state_dict()["fc.weight"])       # the classifier stays fresh
    assert float(own["foreground.bias"].abs().max()) == 0.0


# -- the method: targets, loss, splits --------------------------------------------------------------

def test_targets_from_boxes_inclusive_edges_and_union():
    method = build_method("fsl")
    batch = {"image": torch.zeros(2, 3, 8, 10), "label": torch.tensor([0, 1]), "image_id": ["a.jpg", "b.jpg"],
             "boxes": [torch.tensor([[1., 2., 3., 4.]]), torch.tensor([[0., 0., 1., 1.], [6., 5., 9., 7.]])]}
    t = method.targets(batch)
    want = torch.zeros(2, 8, 10)
    want[0, 2:5, 1:4] = 1                      # rows y0..y1, columns x0..x1, both ends included
    want[1, 0:2, 0:2] = 1
    want[1, 5:8, 6:10] = 1
    assert torch.equal(t["fg"], want) and torch.equal(t["weight"], torch.ones(2, 8, 10))
    # fractional boxes (the train transform's resize): pixels whose centre is inside [x0, x1 + 1) x [y0, y1 + 1)
    frac = dict(batch, boxes=[torch.tensor([[0.6, 0.4, 2.4, 1.6]]), torch.tensor([[0., 0., 0., 0.]])])
    t = method.targets(frac)
    assert t["fg"][0].nonzero().tolist() == [[0, 1], [0, 2], [1, 1], [1, 2], [2, 1], [2, 2]]
    assert t["fg"][1].nonzero().tolist() == [[0, 0]]


def test_targets_from_masks_with_ignore():
    method = build_method("fsl")
    mask = torch.zeros(1, 4, 4, dtype=torch.uint8)
    mask[0, 1:3, 1:3] = 1
    mask[0, 0, :] = 255
    t = method.targets({"image": torch.zeros(1, 3, 4, 4), "image_id": ["m.jpg"], "boxes": [torch.zeros(0, 4)],
                        "mask": mask})
    assert torch.equal(t["fg"], (mask == 1).float())
    assert torch.equal(t["weight"], (mask != 255).float())
    # a collated batch: bool foreground + bool ignore (OpenImages); ignore never removes foreground
    fg = mask == 1
    ignore = torch.zeros_like(fg)
    ignore[0, 3, :] = True
    ignore[0, 1, 1] = True
    t = method.targets({"image": torch.zeros(1, 3, 4, 4), "image_id": ["m.jpg"], "boxes": [torch.zeros(0, 4)],
                        "mask": fg, "ignore": ignore})
    assert torch.equal(t["fg"], fg.float())
    want = torch.ones(1, 4, 4)
    want[0, 3, :] = 0
    assert torch.equal(t["weight"], want)


def test_an_image_without_box_or_mask_is_named():
    method = build_method("fsl")
    batch = {"image": torch.zeros(2, 3, 8, 8), "image_id": ["ok.jpg", "bare.jpg"],
             "boxes": [torch.tensor([[0., 0., 3., 3.]]), torch.zeros(0, 4)]}
    with pytest.raises(ValueError, match="image 'bare.jpg' has no box and no mask"):
        method.targets(batch)
    # a training image known to have boxes whose boxes the random crop cut off: all background
    rest, held = method.splits(None, _split({0: 2}))
    assert not method.targets(dict(batch, image_id=["ok.jpg", rest.samples[0].image_id]))["fg"][1].any()
    with pytest.raises(ValueError, match=f"image '{held.samples[0].image_id}' has no box"):   # held out: not trained on
        method.targets(dict(batch, image_id=["ok.jpg", held.samples[0].image_id]))
    t = method.targets(dict(batch, image_id=["ok.jpg", rest.samples[0].image_id]))
    assert t["fg"][1].sum() == 0 and t["weight"][1].min() == 1


def test_loss_equals_a_hand_computation():
    class Stub(nn.Module):
        def __init__(self, logits, fg):
            super().__init__()
            self.logits, self.fg = nn.Parameter(logits), nn.Parameter(fg)

        def fsl_outputs(self, x):
            return self.logits, self.fg

    g = torch.Generator().manual_seed(0)
    logits, fg_logits = torch.randn(2, 3, generator=g), torch.randn(2, 2, 2, generator=g)
    y = torch.tensor([2, 0])
    target = (torch.rand(2, 4, 4, generator=g) > 0.5).float()
    weight = torch.ones(2, 4, 4)
    weight[0, 0] = 0
    method = build_method("fsl", load_config(None, ["method.name=fsl", "method.fsl.ce_weight=0.5",
                                                    "method.fsl.pos_weight=2"]).method)
    out = method.step(Stub(logits, fg_logits), torch.zeros(2, 3, 4, 4), y, fg=target, weight=weight)

    u = F.interpolate(fg_logits[:, None], size=(4, 4), mode="bilinear", align_corners=False)[:, 0]
    p = torch.sigmoid(u)
    per_pixel = -(2 * target * torch.log(p) + (1 - target) * torch.log(1 - p))
    bce = (per_pixel * weight).sum() / weight.sum()
    ce = -torch.log_softmax(logits, 1)[torch.arange(2), y].mean()
    assert out.loss.item() == pytest.approx((bce + 0.5 * ce).item(), rel=1e-5)
    assert out.stats == {"bce": pytest.approx(bce.item(), rel=1e-5), "ce": pytest.approx(ce.item(), rel=1e-5)}
    assert torch.equal(out.logits, logits) and not out.logits.requires_grad
    out.loss.backward()


def test_step_needs_targets_and_the_fsl_model():
    method = build_method("fsl")
    model = build_model("resnet_tiny", 2, architecture_type="fsl")
    x, y = torch.rand(2, 3, 32, 32), torch.tensor([0, 1])
    with pytest.raises(ValueError, match="needs the foreground target"):
        method.step(model, x, y)
    with pytest.raises(ValueError, match="architecture_type='fsl'"):
        method.step(build_model("resnet_tiny", 2), x, y, fg=torch.zeros(2, 32, 32))
    assert method.model_options() == {"architecture_type": "fsl"} and method.supervision == "localization"


def _split(per_class: dict[int, int], boxes: bool = True, name: str = "val") -> WSOLSplit:
    samples = [Sample(f"c{c}_{i}.jpg", c, None, ((0, 0, 3, 3),) if boxes else ())
               for c, n in per_class.items() for i in range(n)]
    return WSOLSplit(name=name, image_root=Path("/nowhere"), samples=samples,
                     class_names=[f"k{c}" for c in range(max(per_class) + 1)], layout="wsoleval")


def test_splits_hold_out_per_class():
    val = _split({0: 5, 1: 10, 2: 1})
    method = build_method("fsl")
    train_in = _split({0: 3}, name="train")
    rest, held = method.splits(train_in, val)
    ids = lambda s: [x.image_id for x in s.samples]   # noqa: E731
    assert not set(ids(rest)) & set(ids(held)) and sorted(ids(rest) + ids(held)) == sorted(ids(val))
    count = lambda s, c: sum(x.label == c for x in s.samples)   # noqa: E731
    assert [count(held, c) for c in range(3)] == [1, 2, 0]          # 20% of 5 and of 10; a 1-image class trains
    assert rest.class_names == held.class_names == val.class_names
    assert method.splits(train_in, val) == (rest, held)              # seeded: the same draw again
    other = build_method("fsl", load_config(None, ["method.name=fsl", "method.fsl.holdout_seed=1"]).method)
    assert ids(other.splits(train_in, val)[1]) != ids(held)
    cvpr = build_method("fsl", load_config(None, ["method.name=fsl", "method.fsl.holdout_fraction=0"]).method)
    assert cvpr.splits(train_in, val) == (val, val)


def test_splits_refuse_a_split_without_localization_labels():
    with pytest.raises(ValueError, match=r"'val' split .* of its 4 images 0 have boxes and 0 masks"):
        build_method("fsl").splits(None, _split({0: 2, 1: 2}, boxes=False))


def test_config_limits():
    with pytest.raises(ConfigError, match="method.fsl.holdout_fraction"):
        load_config(None, ["method.name=fsl", "method.fsl.holdout_fraction=1"])
    with pytest.raises(ConfigError, match="method.fsl.pos_weight"):
        load_config(None, ["method.name=fsl", "method.fsl.pos_weight=0"])
    assert load_config(None, ["method.name=fsl", "method.fsl.holdout_fraction=0"]).method.fsl.holdout_fraction == 0


# -- a run ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cub(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fsl") / "CUB"
    make_synthetic_cub(root, num_classes=3, images_per_class=12, size=48, seed=0, progress=False)
    return root


def tiny(cub: Path, *extra: str) -> list[str]:
    return [f"data.root={cub}", "data.image_size=32", "data.resize_size=36", "data.val_per_class=5",
            "model.arch=resnet_tiny", "method.name=fsl", "train.epochs=1", "train.batch_size=4",
            "train.max_steps_per_epoch=3", "optim.lr=0.01", "optim.new_layer_lr_mult=1",
            "val.saliencies=[cam]", "val.select_metric=cam_loc", "val.cam_curve_interval=0.1", *extra]


def test_train_validates_on_the_held_out_images_and_evaluates(cub, tmp_path, caplog):
    run = tmp_path / "run"
    with caplog.at_level(logging.INFO, logger="wsol.engine.train"):
        report = train(load_config(None, tiny(cub)), run)
    assert report["method"] == "fsl" and report["epochs"] == 1
    final = report["final_val"]
    assert isinstance(final["cam_loc"], float) and final["num_images"] == 3       # 1 of each class's 5 val images
    assert "trains on the localization labels of 12 images (val:train0.8) and validates on 3 images" in caplog.text
    line = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert isinstance(line["train_bce"], float) and isinstance(line["train_ce"], float)
    model, meta = load_checkpoint(run)
    assert isinstance(model, FSLMixin) and meta["method"] == "fsl"

    spec = importlib.util.spec_from_file_location("tool_evaluate_wsol", REPO / "tools" / "evaluate_wsol.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    out = tmp_path / "eval"
    assert tool.main(["--checkpoint", str(run), "--data", str(cub), "--split", "test", "--saliency", "cam",
                      "--batch-size", "8", "--out-dir", str(out)]) == 0
    res = json.loads((out / "eval-test-cam.json").read_text())
    assert res["num_images"] == len(load_split(cub, "test")) and 0 <= res["MaxBoxAccV2"]["mean"] <= 100


def test_holdout_zero_validates_on_the_training_images(cub, tmp_path):
    report = train(load_config(None, tiny(cub, "method.fsl.holdout_fraction=0", "train.max_steps_per_epoch=1")),
                   tmp_path / "run")
    assert report["final_val"]["num_images"] == 15


def test_data_without_localization_labels_is_a_clear_error(cub, tmp_path, monkeypatch):
    import dataclasses

    import wsol.engine.train as engine_train

    real = engine_train.prepare_data

    def no_boxes(cfg, info):
        root, train_split, val_split, bad = real(cfg, info)
        bare = [dataclasses.replace(s, boxes=(), mask_paths=()) for s in val_split.samples]
        return root, train_split, dataclasses.replace(val_split, samples=bare), bad

    monkeypatch.setattr(engine_train, "prepare_data", no_boxes)
    with pytest.raises(ConfigError, match=r"method 'fsl' cannot use the data at .*'val' split .* 0 have boxes"):
        train(load_config(None, tiny(cub)), tmp_path / "run")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("dataset,metric", [("ilsvrc", "cam_loc"), ("openimages", "cam_pxap")])
def test_train_on_the_wsoleval_stand_ins(dataset, metric, tmp_path):
    """Boxes only (the ILSVRC stand-in: train batches carry boxes, no masks) and masks with ignore
    regions (the OpenImages stand-in: PxAP on the held-out images)."""
    cfg = load_config(None, [f"data.dataset={dataset}", f"data.cache_dir={tmp_path / 'cache'}",
                             "data.synthetic.num_classes=3", "data.synthetic.images_per_class=20",
                             "data.synthetic.size=48", "data.image_size=32", "data.resize_size=36",
                             "model.arch=vgg_gap_tiny", "method.name=fsl", "train.epochs=1", "train.batch_size=4",
                             "train.max_steps_per_epoch=2", "optim.new_layer_lr_mult=1", "val.saliencies=[cam]",
                             f"val.select_metric={metric}", "val.cam_curve_interval=0.1"])
    report = train(cfg, tmp_path / "run")
    assert isinstance(report["final_val"][metric], float) and report["final_val"]["num_images"] == 3
