"""Score trackers on GOT-10k val (or test, for a submission): `siamtrack eval --dataset got10k`.

    python tools/eval_got10k.py --root data/GOT-10k/val --trackers siamtrack,csrt,kcf,mil --workers 2
"""
import sys

from siamtrack.cli import main

if __name__ == "__main__":
    sys.exit(main(["eval", "--dataset", "got10k", *sys.argv[1:]]))
