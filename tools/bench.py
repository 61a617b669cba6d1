"""Time every shipped model per stage beside OpenCV's trackers: `siamtrack bench`.

    python tools/bench.py --threads 2 --backend torch onnxruntime --json bench.json
"""
import sys

from siamtrack.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
