import numpy as np
import pytest

from siamtrack.core.crops import context_size, crop_and_resize


def bright_box_image(x0, y0, w, h, size=(200, 300)):
    image = np.zeros((*size, 3), np.uint8)
    image[y0:y0 + h, x0:x0 + w] = 255
    return image


def mask_box(crop):
    ys, xs = np.nonzero(crop[..., 0] > 127)
    return xs.min(), ys.min(), xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min()


def test_unit_scale_crop_is_an_exact_shift():
    image = bright_box_image(120, 60, 30, 20)
    crop = crop_and_resize(image, cx=135.0, cy=70.0, size=64, out_size=64, border=(0, 0, 0))
    # box centre (135, 70) lands on the crop centre (32, 32)
    assert mask_box(crop) == (32 - 15, 32 - 10, 30, 20)


@pytest.mark.parametrize("scale", [2.0, 0.8])
def test_scaled_crop_recovers_the_known_box(scale):
    image = bright_box_image(100, 80, 40, 24)
    cx, cy, side = 120.0, 92.0, 64 * scale
    crop = crop_and_resize(image, cx, cy, side, 64, border=(0, 0, 0))
    x, y, w, h = mask_box(crop)
    k = side / 64  # map the crop's box back to frame pixels
    recovered = (cx - side / 2 + x * k, cy - side / 2 + y * k, w * k, h * k)
    assert np.allclose(recovered, (100, 80, 40, 24), atol=k)


def test_sub_pixel_centre_moves_the_content_by_the_fraction():
    image = np.tile(np.arange(300, dtype=np.uint8), (200, 1))[..., None].repeat(3, 2)
    a = crop_and_resize(image, 150.0, 100.0, 32, 32, (0, 0, 0)).astype(float)
    b = crop_and_resize(image, 150.5, 100.0, 32, 32, (0, 0, 0)).astype(float)
    assert np.allclose(b[:, 1:-1] - a[:, 1:-1], 0.5, atol=0.51)
    assert abs((b - a)[:, 1:-1].mean() - 0.5) < 0.05


def test_outside_is_filled_with_the_border_colour_and_buffer_is_reused():
    image = np.full((50, 50, 3), 200, np.uint8)
    out = np.empty((32, 32, 3), np.uint8)
    crop = crop_and_resize(image, 0.0, 0.0, 32, 32, border=(10, 20, 30), out=out)
    assert crop is out
    assert tuple(crop[0, 0]) == (10, 20, 30) and tuple(crop[-1, -1]) == (200, 200, 200)


def test_context_size_matches_the_paper_formula():
    assert context_size(40, 20, 0.5) == pytest.approx(np.sqrt((40 + 30) * (20 + 30)))
