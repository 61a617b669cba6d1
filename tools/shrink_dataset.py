"""Copy OTB-layout sequences with frames shrunk to a maximum side, boxes scaled alike: a small copy of a
training set to carry to another machine (the GPU runs of weights/MODEL_CARD.md trained on one at 480 px).

    python tools/shrink_dataset.py ../shared/data/train_mini .gpu/train_small --max-side 480
"""
import argparse
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from siamtrack.datasets import load_sequences


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source")
    parser.add_argument("target")
    parser.add_argument("--max-side", type=int, default=480)
    parser.add_argument("--quality", type=int, default=90, help="JPEG quality of the shrunk frames")
    args = parser.parse_args()
    for seq in tqdm(load_sequences(Path(args.source)), desc="sequences"):
        out = Path(args.target) / seq.name
        (out / "img").mkdir(parents=True, exist_ok=True)
        scale = 1.0
        for path in seq.frames:
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            scale = min(1.0, args.max_side / max(image.shape[:2]))
            small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            cv2.imwrite(str(out / "img" / f"{path.stem}.jpg"), small, [cv2.IMWRITE_JPEG_QUALITY, args.quality])
        # 0-based boxes scale as they are; the file keeps the source's 1-based convention
        boxes = seq.to_source(seq.boxes * scale)
        np.savetxt(out / "groundtruth_rect.txt", boxes, fmt="%.2f", delimiter=",")


if __name__ == "__main__":
    main()
