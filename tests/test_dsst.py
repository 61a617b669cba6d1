"""The DSST scale filter's parts: Felzenszwalb's HOG and the filter's own size estimate."""
import cv2
import numpy as np

from siamtrack.config import DSSTConfig
from siamtrack.dsst import ScaleFilter, fhog
from siamtrack.synthetic import make_object, smooth_texture


def test_fhog_has_31_channels_per_cell_and_ignores_contrast():
    patches = make_object(np.random.default_rng(0), 32, 48)[None].astype(np.float32)
    features = fhog(patches, cell=4)
    assert features.shape == (1, 8, 12, 31) and features.min() >= 0
    # each cell is normalised by its blocks' energy: halving the contrast leaves it (nearly) unchanged
    assert np.abs(fhog(patches * 0.5 + 40, cell=4) - features).max() < 1e-3
    assert np.abs(features[..., :18]).sum() > 0 and np.abs(features[..., 27:]).sum() > 0


def test_the_filter_follows_a_target_growing_by_known_steps():
    rng = np.random.default_rng(1)
    background, target = smooth_texture(rng, 300, 400, 24), make_object(rng, 50, 70)
    center = np.array([200.0, 150.0])

    def frame(zoom: float) -> np.ndarray:
        w, h = int(round(70 * zoom)), int(round(50 * zoom))
        image = background.copy()
        image[150 - h // 2:150 - h // 2 + h, 200 - w // 2:200 - w // 2 + w] = cv2.resize(target, (w, h))
        return image.astype(np.uint8)

    scale_filter = ScaleFilter(DSSTConfig())
    size = np.array([70.0, 50.0])
    scale_filter.start(frame(1.0), center, size)
    for zoom in [1.03, 1.06, 1.1, 1.14, 1.1, 1.05, 1.0, 0.95, 0.9]:
        size = size * scale_filter.estimate(frame(zoom), center, size)
        scale_filter.learn(frame(zoom), center, size)
        assert abs(np.log(size[0] / (70 * zoom))) < 0.03, (zoom, size)
