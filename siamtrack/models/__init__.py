from .backbones import BACKBONES, build_backbone
from .head import XCorr
from .siamese import SiameseNet

__all__ = ["BACKBONES", "build_backbone", "XCorr", "SiameseNet"]
