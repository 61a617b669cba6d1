"""int8 calibration data: its crops and the progress bar that follows them."""
import numpy as np

from siamtrack.config import TrackConfig
from siamtrack.quantize import calibration_batches


def test_calibration_crops_come_with_a_progress_bar_on_stderr_that_goes_when_done(capsys):
    track = TrackConfig(int8_calibration_frames=3)
    batches = list(calibration_batches(track, track.exemplar_size))
    assert len(batches) == 3 and all(b.shape == (1, 3, 127, 127) and b.dtype == np.float32 for b in batches)
    out, err = capsys.readouterr()
    assert out == "" and "int8 calibration, 127 px" in err
    assert err.endswith("\r")  # leave=False: the bar is wiped, not left as a line in logs
