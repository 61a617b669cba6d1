"""SGD over parameter groups (backbone and the rest), its exponential lr schedule, backbone freezing."""
from __future__ import annotations

import torch
from torch import nn

from ..config import TrainConfig
from ..errors import ConfigError


def backbones(net: nn.Module) -> list[nn.Module]:
    """The backbone module(s): one when the branches share weights, two for pseudo-siamese."""
    return [module for name, module in net.named_modules() if name.rsplit(".", 1)[-1] == "backbone"]


def freeze_backbones(net: nn.Module) -> list[nn.Module]:
    """Stop gradients into the backbone(s); returns them so training keeps them in eval mode."""
    frozen = backbones(net)
    for module in frozen:
        module.requires_grad_(False)
    return frozen


def build_optimizer(net: nn.Module, t: TrainConfig) -> tuple[torch.optim.SGD, torch.optim.lr_scheduler.ExponentialLR]:
    """SGD with the backbone at lr x backbone_lr; the lr decays from lr_start to lr_end over the epochs."""
    in_backbone = {id(p) for module in backbones(net) for p in module.parameters()}
    trainable = [p for p in net.parameters() if p.requires_grad]
    groups = [{"params": [p for p in trainable if id(p) not in in_backbone], "lr": t.lr_start},
              {"params": [p for p in trainable if id(p) in in_backbone], "lr": t.lr_start * t.backbone_lr}]
    groups = [g for g in groups if g["params"]]
    if not groups:
        raise ConfigError("nothing to train: train.freeze_backbone leaves no weights "
                          "(set model.adjust > 0 to train a layer after the backbone)")
    optimizer = torch.optim.SGD(groups, lr=t.lr_start, momentum=t.momentum, weight_decay=t.weight_decay)
    gamma = (t.lr_end / t.lr_start) ** (1 / max(1, t.epochs - 1))
    return optimizer, torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma)
