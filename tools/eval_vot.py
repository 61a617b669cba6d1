"""Score trackers on a VOT folder, re-initialised after failures: `siamtrack eval --dataset vot`.

    python tools/eval_vot.py --root data/vot2018 --trackers siamtrack,csrt,kcf,mil --workers 2
"""
import sys

from siamtrack.cli import main

if __name__ == "__main__":
    sys.exit(main(["eval", "--dataset", "vot", *sys.argv[1:]]))
