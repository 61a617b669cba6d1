"""`siamtrack export --format onnx`: the exemplar and search branches as ONNX graphs."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..text import status
from .options import add_model_args


def add_parser(sub) -> None:
    export = sub.add_parser("export", help="write the exemplar and search branches as ONNX")
    export.add_argument("--format", choices=["onnx"], required=True)
    add_model_args(export)
    export.add_argument("--out", required=True, metavar="DIR", help="folder for exemplar.onnx and search.onnx")
    export.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from ..core.checkpoint import build_net
    from ..core.onnx import ONNX_OPSET, export_onnx, onnx_inputs
    from ..models.levels import tracking_net
    cfg, net, _ = build_net(args.config, args.weights)
    with status(f"exporting {Path(cfg.name).stem} to ONNX"):  # a fused config's second level as extra outputs
        paths = export_onnx(tracking_net(net, cfg.model).eval(), cfg.track, args.out)
    print(f"wrote {', '.join(str(p) for p in paths.values())} (ONNX opset {ONNX_OPSET}, batch norm folded, "
          f"dynamic batch); input: {onnx_inputs(cfg)}; responses = {cfg.model.out_scale} x "
          "conv2d(features, kernel)" + (" on normalized features" if cfg.model.xcorr == "normalized" else ""))
    return 0
