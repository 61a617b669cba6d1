"""Captions and box labels on rendered frames: text where expected, drawn once, labels kept apart."""
import cv2
import numpy as np
import pytest

from siamtrack.draw import CAPTION_CORNER, CAPTION_SCALE, FONT, GREEN, LABEL_SCALE, PAD, RED, draw_boxes, draw_caption

GREY = 90


def flat(height=120, width=240) -> np.ndarray:
    return np.full((height, width, 3), GREY, np.uint8)


def ink_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """x0, y0, x1, y1 (exclusive) of the True pixels."""
    ys, xs = np.nonzero(mask)
    return xs.min(), ys.min(), xs.max() + 1, ys.max() + 1


@pytest.mark.parametrize("text", ["score 6.31", "frame 12  score 0.93  TARGET LOST"])
def test_caption_text_is_drawn_once_where_get_text_size_puts_it(text):
    frame = flat(width=400)
    draw_caption(frame, text)
    (width, height), baseline = cv2.getTextSize(text, FONT, CAPTION_SCALE, 1)
    x, y = CAPTION_CORNER[0] + PAD, CAPTION_CORNER[1] + PAD + height  # the text's origin
    x0, y0, x1, y1 = ink_box(frame.min(axis=2) > GREY + 40)  # the white text's pixels
    assert abs(x0 - x) <= 2 and abs(x1 - (x + width)) <= 3  # a doubled, drifting outline is wider
    assert y - height <= y0 and y1 <= y + baseline
    # the caption is exactly one rendering of the text on its plate: nothing else drawn there
    alone = np.zeros_like(frame)
    cv2.putText(alone, text, (x, y), FONT, CAPTION_SCALE, (255, 255, 255), 1, cv2.LINE_AA)
    assert np.array_equal(frame[y - height:y + baseline, x:x + width], alone[y - height:y + baseline, x:x + width])


def label_ink(boxes, shape=(120, 240)) -> np.ndarray:
    """The frame with labels where it differs from the same boxes without labels, else 0."""
    labelled, bare = flat(*shape), flat(*shape)
    draw_boxes(labelled, boxes)
    draw_boxes(bare, [(box, color, "") for box, color, _ in boxes])
    return np.where(np.any(labelled != bare, axis=2, keepdims=True), labelled, 0)


def overlaps(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


@pytest.mark.parametrize("first, second", [
    ((60, 60, 40, 30), (62, 63, 40, 30)),  # nearly the same box
    ((60, 60, 40, 30), (60, 40, 40, 30)),  # one just above the other
    ((60, 60, 40, 30), (60, 80, 40, 30)),  # one just below the other
    ((2, 1, 40, 30), (0, 0, 40, 30)),  # at the top-left corner, where "above" is moved into the frame
    ((60, 60, 40, 4), (60, 60, 40, 4)),  # the same box, thinner than a label
])
def test_labels_of_close_boxes_do_not_overlap(first, second):
    boxes = [(first, RED, "truth"), (second, GREEN, "siamtrack")]
    ink = label_ink(boxes)
    red_text = ink_box((ink[:, :, 2] > 120) & (ink[:, :, 1] < 60))
    green_text = ink_box((ink[:, :, 1] > 120) & (ink[:, :, 2] < 60))
    assert not overlaps(red_text, green_text)
    for (x0, _, x1, _), label in ((red_text, "truth"), (green_text, "siamtrack")):  # neither is covered
        assert abs((x1 - x0) - cv2.getTextSize(label, FONT, LABEL_SCALE, 1)[0][0]) <= 3


def test_label_goes_above_its_box_and_stays_in_the_frame():
    frame = flat()
    draw_boxes(frame, [((100, 50, 40, 30), GREEN, "siamtrack")])
    ink = np.any(frame != flat(), axis=2)
    ink[48:83, 98:143] = False  # the box outline itself
    x0, y0, x1, y1 = ink_box(ink)
    assert x0 == 100 and y1 <= 49
    frame = flat()
    draw_boxes(frame, [((220, 0, 19, 19), GREEN, "siamtrack")])  # at the top-right corner
    assert frame[0, -1].tolist() != [GREY] * 3 and frame[:, :150].min() == GREY  # moved in, not cut


def test_a_box_without_a_label_draws_only_the_box():
    frame = flat()
    draw_boxes(frame, [((10.4, 20.6, 30, 40), RED, "")])
    ys, xs = np.nonzero(np.any(frame != GREY, axis=2))
    assert (xs.min(), ys.min(), xs.max(), ys.max()) == (9, 20, 41, 62)
