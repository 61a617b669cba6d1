"""Write a tracker checkpoint straight from a config's ImageNet initialisation, with no tracking training.

    python tools/init_weights.py --config siamfc_lite0 --out weights/siamfc_lite0.pt
"""
import argparse

from siamtrack.config import load_config
from siamtrack.core.checkpoint import save_checkpoint
from siamtrack.models import SiameseNet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    cfg = load_config(args.config)
    net = SiameseNet(cfg.model)
    save_checkpoint({"model": net.state_dict(), "config": cfg.to_dict()}, args.out)
    print(f"wrote {args.out} ({sum(p.numel() for p in net.parameters()) / 1e6:.2f} M parameters)")


if __name__ == "__main__":
    main()
