"""The DSST scale filter's parts: Felzenszwalb's HOG and the filter's own size estimate."""
import cv2
import numpy as np

from siamtrack.config import DSSTConfig
from siamtrack.core.dsst import ScaleFilter, fhog
from siamtrack.synthetic import make_object, smooth_texture


def test_fhog_has_31_channels_per_cell_and_ignores_contrast():
    patches = make_object(np.random.default_rng(0), 32, 48)[None].astype(np.float32)
    features = fhog(patches, cell=4)
    assert features.shape == (1, 8, 12, 31) and features.min() >= 0
    # each cell is normalised by its blocks' energy: halving the contrast leaves it (nearly) unchanged
    assert np.abs(fhog(patches * 0.5 + 40, cell=4) - features).max() < 1e-3
    assert np.abs(features[..., :18]).sum() > 0 and np.abs(features[..., 27:]).sum() > 0


def zoomed_frame(zoom: float) -> np.ndarray:
    """A 70 x 50 target at (200, 150), `zoom` times its size, on a still background."""
    rng = np.random.default_rng(1)
    background, target = smooth_texture(rng, 300, 400, 24), make_object(rng, 50, 70)
    w, h = int(round(70 * zoom)), int(round(50 * zoom))
    background[150 - h // 2:150 - h // 2 + h, 200 - w // 2:200 - w // 2 + w] = cv2.resize(target, (w, h))
    return background.astype(np.uint8)


def test_the_filter_follows_a_target_growing_by_known_steps():
    center = np.array([200.0, 150.0])
    frame = zoomed_frame

    scale_filter = ScaleFilter(DSSTConfig())
    size = np.array([70.0, 50.0])
    scale_filter.start(frame(1.0), center, size)
    for zoom in [1.03, 1.06, 1.1, 1.14, 1.1, 1.05, 1.0, 0.95, 0.9]:
        size = size * scale_filter.estimate(frame(zoom), center, size)
        scale_filter.learn(frame(zoom), center, size)
        assert abs(np.log(size[0] / (70 * zoom))) < 0.03, (zoom, size)


def test_a_frame_with_no_size_change_learns_from_the_estimates_samples_with_the_same_result():
    center, start = np.array([200.0, 150.0]), np.array([70.0, 50.0])
    frames = [zoomed_frame(zoom) for zoom in [1.0, 1.0, 1.04, 1.04, 1.04, 1.0, 1.0]]
    filters, sizes, crops = [], [], []
    for copy_for_learning in (False, True):  # a copy of the frame makes learn crop it again
        scale_filter, size = ScaleFilter(DSSTConfig()), start
        sampled = scale_filter.samples
        scale_filter.samples = lambda *args: crops.append(copy_for_learning) or sampled(*args)
        scale_filter.start(frames[0], center, size)
        for frame in frames[1:]:
            size = size * scale_filter.estimate(frame, center, size)
            scale_filter.learn(frame.copy() if copy_for_learning else frame, center, size)
        filters.append(scale_filter)
        sizes.append(size)
    assert np.array_equal(sizes[0], sizes[1])
    assert np.allclose(filters[0].numerator, filters[1].numerator) and np.allclose(filters[0].denominator,
                                                                                     filters[1].denominator)
    assert crops.count(False) < crops.count(True) == 1 + 2 * (len(frames) - 1)
