"""Score trackers on an OTB-layout folder: `siamtrack eval --dataset otb`.

    python tools/eval_otb.py --root data/OTB100 --trackers siamtrack,csrt,kcf,mil --workers 2
"""
import sys

from siamtrack.cli import main

if __name__ == "__main__":
    sys.exit(main(["eval", "--dataset", "otb", *sys.argv[1:]]))
