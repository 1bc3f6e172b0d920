"""WSOL classifiers: VGG16-GAP, ResNets with stride-1 layer4, timm GAP models, ADL,
small-image robustness nets (Wide ResNet, Chen et al.'s ResNet) the ReLU -> Softplus switch and the
input-only second-order context (lean double backward: convolutions, BatchNorm, Softplus, max pooling).

    model = build_model("resnet50", num_classes=200, pretrained=True, adl=False)
    logits, feats = model.forward_with_features(x)        # x (B,3,H,W) in [0,1]
    cam = torch.einsum("ck,bkhw->bchw", model.classifier_weight, feats)
"""

from . import acol, fsl, inception, resnet, spg, vgg, wrn  # noqa: F401  (register the built-in archs and types)
from .activations import SmoothLeakyReLU, SmoothReLU, smooth_activations
from .adl import ADL
from .base import IMAGENET_MEAN, IMAGENET_STD, WSOLModel, model_device, running_bn_layers
from .pretrained import LoadReport, PretrainedWeightsMissing, load_pretrained
from .registry import (build_model, list_architecture_types, list_models, register_architecture_type,
                       register_model)
from .second_order import input_second_order, lean_batch_norm, lean_conv2d, lean_double_backward, lean_softplus

__all__ = [
    "ADL",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "LoadReport",
    "PretrainedWeightsMissing",
    "SmoothLeakyReLU",
    "SmoothReLU",
    "WSOLModel",
    "build_model",
    "input_second_order",
    "lean_batch_norm",
    "lean_double_backward",
    "lean_softplus",
    "lean_conv2d",
    "list_architecture_types",
    "list_models",
    "load_pretrained",
    "model_device",
    "register_architecture_type",
    "register_model",
    "running_bn_layers",
    "smooth_activations",
]
