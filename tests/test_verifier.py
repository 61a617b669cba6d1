"""The verifier (siamtrack/core/verifier.py): its cues on hand-made response maps and frames, and what each
kind (rule, classifier, both, guarded) makes of a tracked target and of a lost one's candidate. No network."""
from collections import deque

import numpy as np
import pytest
import torch

from siamtrack.config import LOST_CUES, load_config
from siamtrack.core.targets import ScoreHistory
from siamtrack.core.verifier import PeakMaps, Verifier, logistic

SIZE, UP = 17, 16  # a response map's side, and its upsampling (the default track.response_up)
CLASSIFIER = ("track.verifier.weights={colour: -10.0}", "track.verifier.bias=5.0", "track.verifier.threshold=0.5",
              "track.verifier.accept=0.5", "track.verifier.onset_drop=0")  # p(failed) >= 0.5 where the colours
# agree under 0.5, judged on every update


def verifier(*overrides: str) -> Verifier:
    return Verifier(load_config("siamfc_lite0_fast", overrides).track)


def peaks_at(maps: torch.Tensor, cells: list[tuple[int, int]]) -> PeakMaps:
    """N maps (N x 1 x r x r) and the raw cell of each one's peak, as the tracker hands them over: one level,
    features and kernels of ones (their cosine is 1)."""
    n = len(maps)
    loc = np.array([(r * UP + UP // 2) * SIZE * UP + c * UP + UP // 2 for r, c in cells])
    features, kernels = (torch.ones(n, 2, SIZE + 2, SIZE + 2),), (torch.ones(n, 2, 3, 3),)
    rows = np.arange(n)
    return PeakMaps(maps, (maps,), features, kernels, loc, maps=rows, crops=rows, kernel_rows=rows)


def bump(centre: tuple[int, int], height: float = 1.0) -> torch.Tensor:
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    return torch.tensor(height * np.exp(-((yy - centre[0]) ** 2 + (xx - centre[1]) ** 2) / 2.0), dtype=torch.float32)


def history(score: float, reference: float, recent: list[float], previous: float = np.nan,
            was_lost: bool = False) -> ScoreHistory:
    return ScoreHistory(np.array([score]), np.array([reference]), [deque(recent)], np.array([previous]),
                        np.array([was_lost]))


def test_a_second_peak_as_high_as_the_first_makes_the_sidelobe_near_one_and_a_lone_one_near_zero():
    lone = bump((8, 8))[None, None]
    twin = (bump((8, 8)) + bump((3, 13)))[None, None]
    frame, box = np.zeros((40, 40, 3), np.uint8), np.array([[10.0, 10, 10, 10]])
    cues = [verifier().cues(frame, peaks_at(maps, [(8, 8)]), history(1, 1, [1]), box,
                            verifier().colour_histogram(frame, box[0])[None], np.zeros(1))[0]
            for maps in (lone, twin)]
    sidelobe, sharpness = LOST_CUES.index("sidelobe"), LOST_CUES.index("sharpness")
    assert cues[0][sidelobe] < 0.1 and cues[1][sidelobe] > 0.95  # a lone bump: its own slope past the radius, e^-2.5
    assert cues[0][sharpness] > cues[1][sharpness]
    assert cues[0][LOST_CUES.index("cosine")] == pytest.approx(1.0)
    assert cues[0][LOST_CUES.index("colour")] == pytest.approx(1.0)  # the same box, the same colours


def test_the_colour_cue_tells_a_box_of_other_colours_from_the_target():
    check = verifier()
    frame = np.zeros((40, 80, 3), np.uint8)
    frame[:, :40] = (200, 30, 30)
    frame[:, 40:] = (30, 30, 200)
    red, blue = np.array([5.0, 5, 30, 30]), np.array([45.0, 5, 30, 30])
    model = check.colour_histogram(frame, red)[None]
    assert check.colour_agreement(frame, red[None], model)[0] == pytest.approx(1.0)
    assert check.colour_agreement(frame, blue[None], model)[0] < 0.05


@pytest.mark.parametrize("kind, ruled, classified, lost, taken", [
    # the rule says lost (score far under its recent ones), the classifier not (colours agree)
    ("rule", True, False, True, False),
    ("classifier", True, False, False, True),
    ("both", True, False, True, False),
    ("guarded", True, False, True, False),
    # the rule says tracked, the classifier lost (colours disagree)
    ("rule", False, True, False, True),
    ("classifier", False, True, True, False),
    ("both", False, True, True, False),
    ("guarded", False, True, False, False),  # the classifier never flags a tracked target, but guards a take-back
])
def test_each_kind_judges_a_tracked_target_and_a_candidate_as_it_says(kind, ruled, classified, lost, taken,
                                                                      monkeypatch):
    check = verifier(f"track.verifier.kind={kind}", *CLASSIFIER)
    colour = 0.0 if classified else 1.0
    cues = np.zeros((1, len(LOST_CUES)))
    cues[0, LOST_CUES.index("colour")] = colour
    monkeypatch.setattr(check, "cues", lambda *args: cues)
    scores = history(score=1.0 if ruled else 10.0, reference=10.0, recent=[10.0] * 5)
    peaks, colours = peaks_at(bump((8, 8))[None, None], [(8, 8)]), np.zeros((1, 8 ** 3))  # cut to those read
    judged, _ = check.judge(None, peaks, scores, np.zeros((1, 4)), colours, np.zeros(1))
    accepted, _ = check.accept(None, None, scores, np.zeros((1, 4)), None)
    assert judged[0] == lost
    assert accepted[0] == taken
    assert (logistic(5.0 - 10.0 * colour) >= 0.5) == classified  # the hand-made classifier says what it is meant to


@pytest.mark.parametrize("kind, found, taken", [
    ("both", (), False),  # the lost classifier stands in: the rule too must say not lost, and it does not
    ("both", ("track.verifier.found_weights={colour: -10.0}", "track.verifier.found_bias=5.0"), True),
    ("guarded", ("track.verifier.found_weights={colour: -10.0}", "track.verifier.found_bias=5.0"), True),
    ("rule", ("track.verifier.found_weights={colour: -10.0}", "track.verifier.found_bias=5.0"), False),  # no guard
])
def test_a_found_classifier_of_its_own_takes_back_a_candidate_the_rule_would_refuse(kind, found, taken, monkeypatch):
    """A candidate whose colours agree, its score far under the target's recent ones (from before the loss): a
    found classifier learnt on candidates judges it alone; the rule refuses it where no such classifier is."""
    check = verifier(f"track.verifier.kind={kind}", *CLASSIFIER, *found)
    cues = np.zeros((1, len(LOST_CUES)))
    cues[0, LOST_CUES.index("colour")] = 1.0
    monkeypatch.setattr(check, "cues", lambda *args: cues)
    scores = history(score=1.0, reference=10.0, recent=[10.0] * 5)
    assert check.rule_lost(scores)[0]
    accepted, _ = check.accept(None, None, scores, np.zeros((1, 4)), None)
    assert accepted[0] == taken


@pytest.mark.parametrize("previous, score, was_lost, failed, lost", [
    (1.0, 0.9, False, 0.9, False),  # the classifier says failed, but the peak did not drop: a turn, the rule's
    (1.0, 0.5, False, 0.9, True),  # an abrupt drop (under 0.6 x the last peak): the classifier counts
    (1.0, 0.5, False, 0.1, False),  # a drop the classifier does not call a failure
    (0.9, 0.9, True, 0.9, True),  # lost at the last update: it stays lost while the classifier says failed
    (0.9, 0.9, True, 0.1, False),  # and is tracked again once it does not
    (np.nan, 0.5, False, 0.9, False),  # the first update has no last peak to drop from
])
def test_with_an_onset_drop_the_classifier_judges_a_tracked_target_only_from_an_abrupt_drop_on(
        previous, score, was_lost, failed, lost):
    check = verifier("track.verifier.kind=both", *CLASSIFIER, "track.verifier.onset_drop=0.6")
    quiet = history(score, score, [score], previous, was_lost)  # the rule's reference and recent: the score itself
    assert check.verdict(quiet, np.array([failed]))[0] == lost
    assert not check.verdict(quiet)[0]  # the rule alone


def test_with_an_onset_drop_the_cues_are_read_only_where_the_classifier_counts():
    """Its cost: a target tracked on with no drop of its peak has no cues read (NaN), one whose peak dropped has."""
    check = verifier("track.verifier.kind=both", *CLASSIFIER, "track.verifier.onset_drop=0.6")
    maps = torch.stack([bump((8, 8)), bump((8, 8))])[:, None]
    frame, boxes = np.zeros((40, 40, 3), np.uint8), np.array([[10.0, 10, 10, 10]] * 2)
    steady, dropped = history(0.9, 0.9, [0.9], previous=1.0), history(0.5, 0.5, [0.5], previous=1.0)
    both = ScoreHistory(*(np.concatenate([getattr(steady, f), getattr(dropped, f)])
                          for f in ("score", "reference")), steady.recent + dropped.recent,
                        np.array([1.0, 1.0]), np.array([False, False]))
    colours = np.repeat(check.colour_histogram(frame, boxes[0])[None], 2, axis=0)
    _, cues = check.judge(frame, peaks_at(maps, [(8, 8), (8, 8)]), both, boxes, colours, np.zeros(2))
    assert np.isnan(cues[0]).all() and np.isfinite(cues[1]).all()


def test_an_unknown_kind_is_a_one_line_error():
    from siamtrack.errors import ConfigError
    with pytest.raises(ConfigError, match="track.verifier.kind"):
        load_config("siamfc_lite0_fast", ["track.verifier.kind=maybe"])


def test_the_colour_models_move_only_where_the_update_judged_the_target_tracked(monkeypatch):
    check = verifier("track.verifier.colour_rate=0.25")
    frame = np.zeros((40, 80, 3), np.uint8)
    frame[:, :40] = (200, 30, 30)
    frame[:, 40:] = (30, 30, 200)
    red, blue = np.array([5.0, 5, 30, 30]), np.array([45.0, 5, 30, 30])
    models = np.stack([check.colour_histogram(frame, red)] * 2)
    read = []
    histogram = check.colour_histogram
    monkeypatch.setattr(check, "colour_histogram", lambda f, box: read.append(box) or histogram(f, box))
    adapted = check.adapted_colours(frame, np.stack([blue, blue]), models, np.array([True, False]))
    np.testing.assert_allclose(adapted[0], 0.75 * models[0] + 0.25 * histogram(frame, blue))
    assert (adapted[1] == models[1]).all() and len(read) == 1  # not tracked: as it was, no histogram read
    unmoved = verifier().adapted_colours(frame, np.stack([blue, blue]), models, np.array([True, True]))
    assert (unmoved == models).all()  # a rate of 0 (the shipped configs): the first box's colours
