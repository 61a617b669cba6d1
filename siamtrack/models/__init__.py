from .backbones import BACKBONES, build_backbone, conv_bn_pairs
from .head import XCorr
from .siamese import SiameseNet

__all__ = ["BACKBONES", "build_backbone", "conv_bn_pairs", "XCorr", "SiameseNet"]
