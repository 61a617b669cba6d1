"""Pair sampling, crops, and the trainer end to end on small generated sequences (AlexNet, tiny epochs)."""
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from siamtrack import SiamFCTracker
from siamtrack.cli import main
from siamtrack.config import load_config
from siamtrack.datasets import Sequence, load_sequences
from siamtrack.errors import ConfigError, SourceError
from siamtrack.training import launch, train, trainer
from siamtrack.training.data import PairDataset
from siamtrack.training.pairs import pair_sources, sample_pair, split_validation, usable_frames
from siamtrack.training.progress import RunClock, duration
from siamtrack.training.transforms import PairTransform

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
REPO = Path(__file__).resolve().parents[1]
# a few pairs per epoch in batches of 2, smaller crops (AlexNet: 2x2 exemplar features, 11x11 responses)
TINY = ["train.pairs_per_epoch=4", "train.batch_size=2", "train.val_pairs=2", "train.num_workers=0",
        "train.log_interval=1", "train.val_fraction=0.25", "track.exemplar_size=95", "track.search_size=175"]


def tiny_config(*overrides: str):
    return load_config("siamfc_alexnet", [*TINY, *overrides])


def fake_sequence(name: str, count: int, absent=(), cover=None, boxes=None) -> Sequence:
    boxes = np.tile([10.0, 10.0, 20.0, 20.0], (count, 1)) if boxes is None else np.asarray(boxes, float)
    flags = np.zeros(count, bool)
    flags[list(absent)] = True
    return Sequence(name, [Path(f"{i}.jpg") for i in range(count)], boxes, flags, True, "otb",
                    None if cover is None else np.asarray(cover))


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory) -> Path:
    """Four OTB-layout sequences: a textured square drifting over a noise background."""
    root = tmp_path_factory.mktemp("synthetic")
    rng = np.random.default_rng(0)
    for s in range(4):
        folder = root / f"seq{s}"
        (folder / "img").mkdir(parents=True)
        background = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
        target = rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)
        lines = []
        for f in range(8):
            frame = background.copy()
            x, y = 30 + 6 * f, 40 + 3 * f
            frame[y:y + 24, x:x + 24] = target
            cv2.imwrite(str(folder / "img" / f"{f + 1:04d}.jpg"), frame)
            lines.append(f"{x + 1},{y + 1},24,24")  # OTB: 1-based
        (folder / "groundtruth_rect.txt").write_text("\n".join(lines) + "\n")
    return root


def rows(run: Path, kind: str) -> list[dict]:
    return [r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if r["kind"] == kind]


# --- pairs

def test_usable_frames_skip_absent_covered_and_degenerate():
    boxes = np.tile([1.0, 1.0, 5.0, 5.0], (6, 1))
    boxes[3, 2] = 0  # zero width
    boxes[4] = np.nan
    seq = fake_sequence("s", 6, absent=[1], cover=[8, 8, 0, 8, 8, 8], boxes=boxes)
    assert usable_frames(seq).tolist() == [0, 5]


def test_pairs_respect_max_gap_and_drop_frames_without_partner():
    lonely = fake_sequence("lonely", 50, absent=range(1, 50))  # one usable frame
    far = fake_sequence("far", 30, absent=range(1, 29))  # usable 0 and 29, 29 apart
    near = fake_sequence("near", 30)
    sources = pair_sources([lonely, far, near], max_gap=5)
    assert [s.seq.name for s in sources] == ["near"]
    rng = np.random.default_rng(0)
    gaps = [j - i for _, i, j in (sample_pair(sources, 5, rng) for _ in range(200))]
    assert all(0 < abs(g) <= 5 for g in gaps) and min(gaps) == -5 and max(gaps) == 5
    with pytest.raises(SourceError, match="no sequence has two usable frames"):
        pair_sources([lonely, far], max_gap=5)


def test_sequences_weigh_the_same_whatever_their_length():
    sources = pair_sources([fake_sequence("long", 1000), fake_sequence("short", 10)], max_gap=100)
    rng = np.random.default_rng(1)
    names = [sample_pair(sources, 100, rng)[0].name for _ in range(2000)]
    assert 0.45 < names.count("short") / len(names) < 0.55


def test_sampling_is_reproducible_with_a_seed():
    sources = pair_sources([fake_sequence(f"s{k}", 40) for k in range(5)], max_gap=10)
    draw = lambda seed: [(s.name, i, j) for s, i, j in (sample_pair(sources, 10, np.random.default_rng(seed))
                                                        for _ in range(20))]
    assert draw(3) == draw(3) and draw(3) != draw(4)


def test_validation_split_holds_out_whole_sequences():
    seqs = [fake_sequence(f"s{k}", 5) for k in range(10)]
    train_seqs, val_seqs = split_validation(seqs, 0.2, seed=0)
    assert len(val_seqs) == 2 and len(train_seqs) == 8
    assert {s.name for s in train_seqs}.isdisjoint(s.name for s in val_seqs)
    assert [s.name for s in split_validation(seqs, 0.2, seed=0)[1]] == [s.name for s in val_seqs]
    assert split_validation(seqs, 0.0, seed=0) == (seqs, [])


# --- transforms and the dataset

def test_search_crop_puts_the_target_at_the_returned_offset():
    cfg = load_config("siamfc_alexnet", ["train.color_jitter=0.0", "train.gray_prob=0.0"])
    frame = np.zeros((200, 300, 3), np.uint8)
    frame[90:110, 140:160] = 255
    box = np.array([140.0, 90.0, 20.0, 20.0])
    z, x, offset = PairTransform(cfg.track, cfg.train)(frame, box, frame, box, np.random.default_rng(0))
    assert z.shape == (3, 127, 127) and x.shape == (3, 255, 255) and x.dtype == torch.uint8
    ys, xs = np.nonzero(x[0].numpy() > 128)
    centre = np.array([xs.mean(), ys.mean()]) + 0.5 - 255 / 2
    assert np.abs(offset.numpy()).max() > 1 and np.allclose(centre, offset.numpy(), atol=0.6)


def test_gray_augmentation_makes_channels_equal():
    cfg = load_config("siamfc_alexnet", ["train.gray_prob=1.0"])
    frame = np.random.default_rng(0).integers(0, 255, (100, 100, 3), dtype=np.uint8)
    box = np.array([40.0, 40.0, 20.0, 20.0])
    z, x, _ = PairTransform(cfg.track, cfg.train)(frame, box, frame, box, np.random.default_rng(0))
    assert torch.equal(z[0], z[1]) and torch.equal(x[1], x[2])


def test_dataset_items_depend_only_on_key_and_index(synthetic_root):
    cfg = tiny_config()
    make = lambda key: PairDataset(load_sequences(synthetic_root), 4, 100, PairTransform(cfg.track, cfg.train), key)
    a, b, c = make((0, 0, 1)), make((0, 0, 1)), make((0, 0, 2))
    assert all(torch.equal(u, v) for u, v in zip(a[3], b[3]))
    assert not torch.equal(a[3][1], c[3][1])


# --- the trainer

def test_training_writes_checkpoints_metrics_and_plot_and_the_tracker_loads_them(synthetic_root, tmp_path):
    out = tmp_path / "run"
    net = train(tiny_config("train.epochs=2"), [synthetic_root], out, progress=False)
    assert {p.name for p in out.iterdir()} == {"last.pt", "best.pt", "metrics.jsonl", "curves.png"}
    ckpt = torch.load(out / "last.pt", weights_only=True)
    assert ckpt["epoch"] == 2 and ckpt["step"] == 4
    assert set(ckpt) >= {"model", "optimizer", "scheduler", "config", "rng"}
    assert ckpt["config"]["train"]["pairs_per_epoch"] == 4
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in ckpt["model"].items())
    epochs = rows(out, "epoch")
    assert [r["lr"] for r in epochs] == pytest.approx([1e-2, 1e-5])
    assert all(np.isfinite(r["val_loss"]) and np.isfinite(r["train_loss"]) for r in epochs)
    assert [r["step"] for r in rows(out, "step")] == [1, 2, 3, 4]
    start = rows(out, "start")[0]
    assert len(start["val_sequences"]) == 1 and len(start["train_sequences"]) == 3
    frames = sorted((synthetic_root / "seq0" / "img").glob("*.jpg"))
    tracker = SiamFCTracker(weights=out / "best.pt", device="cpu")
    tracker.init(cv2.imread(str(frames[0]))[:, :, ::-1], (29, 39, 24, 24))
    assert np.isfinite(tracker.update(cv2.imread(str(frames[1]))[:, :, ::-1])).all()


def test_a_folder_with_a_run_is_not_overwritten(synthetic_root, tmp_path):
    (tmp_path / "last.pt").write_bytes(b"")
    with pytest.raises(ConfigError, match="already holds a run"):
        train(tiny_config("train.epochs=1"), [synthetic_root], tmp_path, progress=False)


def test_a_run_that_fails_on_its_input_leaves_no_folder_behind(synthetic_root, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SourceError, match="matches no dataset layout"):
        train(tiny_config(), [empty], tmp_path / "run", progress=False)
    with pytest.raises(ConfigError, match="nothing to train"):  # found after the data is read
        train(tiny_config("train.freeze_backbone=true"), [synthetic_root], tmp_path / "run", progress=False)
    assert main(["train", "--data", str(empty), "--out", str(tmp_path / "run")]) == 2
    assert not (tmp_path / "run").exists()


def test_the_bar_counts_pairs_from_the_first_step_and_the_run_time_is_told(synthetic_root, tmp_path, capsys,
                                                                          monkeypatch):
    counts = []

    class Bar(trainer.tqdm):
        def update(self, n=1):
            super().update(n)
            counts.append((self.desc, self.n, self.total))

    monkeypatch.setattr(trainer, "tqdm", Bar)
    train(tiny_config("train.epochs=2", "train.log_interval=100"), [synthetic_root], tmp_path / "run")
    assert counts == [("epoch 1/2", 2, 4), ("epoch 1/2", 4, 4), ("epoch 2/2", 2, 4), ("epoch 2/2", 4, 4)]
    err = capsys.readouterr().err
    told = r"training at [\d.]+ pairs/s: about \d+ s left for the run \(2 x 4 training \+ 2 validation pairs\)"
    assert len(re.findall(told, err)) == 1  # once, after the third step
    assert not rows(tmp_path / "run", "step")  # the bar moved although no interval was logged


def test_run_clock_leaves_out_the_first_step_and_counts_what_is_left():
    clock = RunClock(pairs_left=100)
    clock.step(10, seconds=60.0)  # start-up: not timed
    assert clock.seconds_left() is None
    clock.step(10, seconds=2.0)
    clock.step(10, seconds=2.0)
    clock.validated(10)
    assert clock.pairs_per_s == 5.0 and clock.seconds_left() == 12.0  # 60 pairs at 5 pairs/s
    assert [duration(s) for s in (12.4, 250, 3900)] == ["12 s", "4 min 10 s", "1 h 05 min"]


def test_frozen_backbone_stays_put_while_the_adjust_layer_learns(synthetic_root, tmp_path):
    cfg = tiny_config("train.epochs=1", "model.adjust=16", "train.freeze_backbone=true")
    torch.manual_seed(cfg.train.seed)
    from siamtrack.models import SiameseNet
    before = SiameseNet(cfg.model).state_dict()
    after = train(cfg, [synthetic_root], tmp_path / "run", progress=False).state_dict()
    backbone = [k for k in before if ".backbone." in k]
    adjust = [k for k in before if ".adjust." in k and k.endswith("weight")]
    assert backbone and all(torch.equal(before[k], after[k]) for k in backbone)  # incl. BN statistics
    assert adjust and not all(torch.equal(before[k], after[k]) for k in adjust)
    with pytest.raises(ConfigError, match="nothing to train"):
        train(tiny_config("train.freeze_backbone=true"), [synthetic_root], tmp_path / "run2", progress=False)


def test_backbone_learning_rate_multiplier(synthetic_root, tmp_path):
    cfg = tiny_config("train.epochs=1", "model.adjust=16", "train.backbone_lr=0.1")
    train(cfg, [synthetic_root], tmp_path / "run", progress=False)
    groups = torch.load(tmp_path / "run" / "last.pt", weights_only=True)["optimizer"]["param_groups"]
    assert [g["initial_lr"] for g in groups] == pytest.approx([1e-2, 1e-3])


def cli_train(root: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "--config", "siamfc_alexnet", "--data", str(root), "--out", str(out), "--quiet",
            *(a for o in [*TINY, "train.epochs=3"] for a in ("--set", o)), *extra]


def test_killed_run_resumes_exactly(synthetic_root, tmp_path):
    """SIGKILL a CLI run after its first epoch, resume it, and land on the weights of an unbroken run."""
    killed, whole = tmp_path / "killed", tmp_path / "whole"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": str(torch.get_num_threads())}
    proc = subprocess.Popen([sys.executable, "-m", "siamtrack", *cli_train(synthetic_root, killed)], env=env)
    try:
        while not (killed / "metrics.jsonl").exists() or not rows(killed, "epoch"):
            assert proc.poll() is None, "the run ended before it could be killed"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    before = (killed / "metrics.jsonl").read_text()
    stopped_at = torch.load(killed / "last.pt", weights_only=True)
    assert 1 <= stopped_at["epoch"] < 3
    assert main(cli_train(synthetic_root, killed, "--resume")) == 0
    assert main(cli_train(synthetic_root, whole)) == 0
    after = (killed / "metrics.jsonl").read_text()
    assert after.startswith(before)  # nothing written before the kill is lost
    resumed, unbroken = (torch.load(p / "last.pt", weights_only=True) for p in (killed, whole))
    assert resumed["epoch"] == unbroken["epoch"] == 3 and resumed["step"] == unbroken["step"] == 6
    assert rows(killed, "resume")[0]["step"] == stopped_at["step"]
    assert [r["lr"] for r in rows(killed, "epoch")][-2:] == [r["lr"] for r in rows(whole, "epoch")][-2:]
    assert resumed["optimizer"]["param_groups"][0]["lr"] == unbroken["optimizer"]["param_groups"][0]["lr"]
    assert all(torch.equal(resumed["model"][k], unbroken["model"][k]) for k in unbroken["model"])


def test_cli_train_errors_are_one_line(synthetic_root, tmp_path, capsys):
    assert main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "run")]) == 2
    assert capsys.readouterr().err.strip().endswith("matches no dataset layout (GOT-10k list.txt + absence.label, "
                                                    "OTB NAME/groundtruth_rect*.txt, VOT list.txt + NAME/groundtruth.txt, "
                                                    "LaSOT CLASS/CLASS-N/groundtruth.txt + img/, "
                                                    "TrackingNet CHUNK/frames + CHUNK/anno)")
    assert main(["train", "--data", str(synthetic_root), "--out", str(tmp_path / "none"), "--resume"]) == 2
    assert "nothing to resume" in capsys.readouterr().err


def _ddp_rank(cfg, root, out, weights_dir):
    net = train(cfg, [root], out, device="cpu", progress=False)
    torch.save(net.state_dict(), Path(weights_dir) / f"rank{os.environ['RANK']}.pt")


def test_two_gloo_processes_end_with_identical_weights(synthetic_root, tmp_path):
    cfg = tiny_config("train.epochs=2", "train.pairs_per_epoch=8")
    launch(2, _ddp_rank, cfg, synthetic_root, tmp_path / "run", tmp_path)
    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert all(torch.equal(rank0[k], rank1[k]) for k in rank0)
    ckpt = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert ckpt["step"] == 4  # 8 pairs per epoch / (2 per batch x 2 processes), 2 epochs
    assert all(torch.equal(ckpt["model"][k], rank0[k]) for k in rank0)
    assert rows(tmp_path / "run", "start")[0]["world"] == 2
    assert len(rows(tmp_path / "run", "epoch")) == 2  # rank 0 alone writes the log


def test_cross_validation_holds_each_fold_out_and_scores_every_sequence_once(synthetic_root, tmp_path):
    tool, out = [sys.executable, str(REPO / "tools" / "cross_validate.py")], tmp_path / "cv"
    sets = [a for o in [*TINY, "train.epochs=1"] for a in ("--set", o)]
    subprocess.run([*tool, "train", "--config", "siamfc_alexnet", "--data", str(synthetic_root), "--out", str(out),
                    "--folds", "2", "--device", "cpu", *sets], check=True, capture_output=True)
    names = {f"seq{s}" for s in range(4)}
    folds = json.loads((out / "folds.json").read_text())["folds"]
    assert sorted(sum(folds, [])) == sorted(names)
    for k, held in enumerate(folds):
        assert {p.name for p in (out / f"fold{k}" / "data").iterdir()} == names - set(held)
        assert (out / f"fold{k}" / "run" / "best.pt").is_file()
    assert {p.name for p in (out / "all" / "data").iterdir()} == names
    scored = subprocess.run([*tool, "score", "--out", str(out), "--size-bound", "--scale-picks", "3"],
                            capture_output=True, text=True)
    assert scored.returncode == 0, scored.stderr
    lines = scored.stdout.splitlines()
    assert lines[0].startswith("4 sequences in 2 folds")
    figures = [[float(v) for v in line.split()[-3::2]] for line in lines[1:3]]
    assert all(0 <= v <= 1 for row in figures for v in row)
    assert figures[0][1] == figures[1][1]  # the size bound keeps the tracked centres: same precision
    assert lines[3].startswith("trained   picks the true scale") and "of 6 times (chance 0.20;" in lines[3]
    shares = [float(v) for v in lines[3].split("steps ")[1].rstrip(")").split()[1::2]]
    assert len(shares) == 5 and sum(shares) == pytest.approx(1, abs=0.03)


@pytest.mark.slow
@pytest.mark.skipif(not (DATA / "train_mini").is_dir(), reason=f"real data not present at {DATA / 'train_mini'}")
def test_real_train_mini_short_run(tmp_path):
    out = tmp_path / "run"
    cfg = load_config("siamfc_alexnet", ["train.epochs=1", "train.pairs_per_epoch=8", "train.batch_size=4",
                                         "train.val_pairs=4", "train.num_workers=0", "train.val_fraction=0.2"])
    train(cfg, [DATA / "train_mini"], out, progress=False)
    (epoch,) = rows(out, "epoch")
    assert np.isfinite(epoch["train_loss"]) and np.isfinite(epoch["val_loss"])
    start = rows(out, "start")[0]
    assert len(start["val_sequences"]) == 5 and not set(start["val_sequences"]) & set(start["train_sequences"])
