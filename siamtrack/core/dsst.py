"""DSST's scale filter (Danelljan et al., BMVC 2014), in the fast form of fDSST (TPAMI 2017): a
correlation filter along the scale axis, on HOG features of the target cropped at a range of sizes
around the tracked one, learnt online from each frame. The position comes from elsewhere (SiamFC's
response); this only says how much the box grew or shrank since the last frame."""
from __future__ import annotations

import cv2
import numpy as np
import torch

from ..config import DSSTConfig

ORIENTATIONS = 18  # contrast-sensitive orientation bins of Felzenszwalb's HOG (9 insensitive ones fold them)
TRUNCATE = 0.2
EPS = 1e-4


def fhog(patches: np.ndarray, cell: int = 4) -> np.ndarray:
    """Felzenszwalb's 31-channel HOG of S x H x W x 3 patches: S x H/cell x W/cell x 31 (18 signed and 9
    unsigned orientations, each normalised by its 4 neighbouring 2x2 blocks, plus 4 block energies)."""
    image = patches.astype(np.float32)
    gx = np.zeros_like(image)
    gy = np.zeros_like(image)
    gx[:, :, 1:-1] = image[:, :, 2:] - image[:, :, :-2]
    gy[:, 1:-1] = image[:, 2:] - image[:, :-2]
    energy = gx * gx + gy * gy
    strongest = np.argmax(energy, axis=3)[..., None]  # per pixel, the colour with the strongest gradient
    gx = np.take_along_axis(gx, strongest, 3)[..., 0]
    gy = np.take_along_axis(gy, strongest, 3)[..., 0]
    magnitude = np.sqrt(np.take_along_axis(energy, strongest, 3)[..., 0])
    bins = np.floor((np.arctan2(gy, gx) + np.pi) * (ORIENTATIONS / (2 * np.pi))).astype(np.int64) % ORIENTATIONS
    s, h, w = magnitude.shape
    rows, cols = h // cell, w // cell
    # each pixel votes its magnitude into its cell's bin of its orientation
    cell_index = (np.arange(h)[:, None] // cell).clip(max=rows) * (cols + 1) + (np.arange(w) // cell).clip(max=cols)
    index = ((np.arange(s)[:, None, None] * (rows + 1) * (cols + 1) + cell_index) * ORIENTATIONS + bins).ravel()
    votes = np.bincount(index, magnitude.ravel(), minlength=s * (rows + 1) * (cols + 1) * ORIENTATIONS)
    signed = votes.reshape(s, rows + 1, cols + 1, ORIENTATIONS)[:, :rows, :cols].astype(np.float32)
    unsigned = signed[..., :9] + signed[..., 9:]
    cell_energy = np.pad((unsigned ** 2).sum(axis=3), ((0, 0), (1, 1), (1, 1)), mode="edge")
    blocks = cell_energy[:, :-1, :-1] + cell_energy[:, 1:, :-1] + cell_energy[:, :-1, 1:] + cell_energy[:, 1:, 1:]
    features = np.zeros((s, rows, cols, 31), dtype=np.float32)
    for dy in (0, 1):  # the four 2x2 blocks that hold each cell
        for dx in (0, 1):
            norm = 1.0 / np.sqrt(blocks[:, dy:dy + rows, dx:dx + cols, None] + EPS)
            signed_n = np.minimum(signed * norm, TRUNCATE)
            features[..., :18] += 0.5 * signed_n
            features[..., 18:27] += 0.5 * np.minimum(unsigned * norm, TRUNCATE)
            features[..., 27 + 2 * dy + dx] = 0.2357 * signed_n.sum(axis=3)
    return features


def orthonormal_basis(columns: np.ndarray) -> np.ndarray:
    """The transposed Q of the columns' QR (fDSST's projection), computed by torch: its thread pool is the
    network's, where numpy's OpenBLAS threads would spin beside it and slow every stage down."""
    return torch.linalg.qr(torch.from_numpy(columns))[0].T.numpy()


def project(basis: np.ndarray, samples: np.ndarray) -> np.ndarray:
    return (torch.from_numpy(basis) @ torch.from_numpy(samples)).numpy()


def resize_spectrum(spectrum: np.ndarray, size: int) -> np.ndarray:
    """A 1-D DFT zero-padded to `size` bins: the signal interpolated to `size` samples."""
    n = len(spectrum)
    low = (n + 1) // 2
    out = np.zeros(size, dtype=complex)
    out[:low] = spectrum[:low]
    out[size - (n - low):] = spectrum[low:]
    return out * (size / n)


class ScaleFilter:
    """One target's scale filter: `start` on the first frame, then `estimate` and `learn` on each later one."""

    def __init__(self, settings: DSSTConfig):
        self.settings = s = settings
        exponents = (np.arange(s.scales) - (s.scales - 1) // 2) * s.interpolated / s.scales
        self.sample_factors = s.step ** exponents
        shifted = np.roll(exponents, -((s.scales - 1) // 2))  # the wanted peak at index 0: no change
        self.wanted = np.fft.fft(np.exp(-0.5 * shifted ** 2 / (s.sigma * s.interpolated) ** 2))
        interpolated = np.arange(s.interpolated) - (s.interpolated - 1) // 2
        self.changes = s.step ** np.roll(interpolated, -((s.interpolated - 1) // 2))
        self.window = np.hanning(s.scales + 2)[1:-1].astype(np.float32)  # no zero weights at the ends
        self._estimated = None  # the last estimate's frame, box and samples

    def start(self, frame: np.ndarray, center: np.ndarray, size: np.ndarray) -> None:
        s = self.settings
        zoom = min(1.0, np.sqrt(s.model_area / np.prod(size)))
        cell = s.cell
        self.model_size = tuple(int(max(2 * cell, np.floor(v * zoom / cell) * cell)) for v in size)
        samples = self.samples(frame, center, np.asarray(size, dtype=np.float64))
        self.numerator_samples, self.denominator = samples, 0.0  # rate 1 replaces both
        self._fit(samples, rate=1.0)

    def samples(self, frame: np.ndarray, center: np.ndarray, size: np.ndarray) -> np.ndarray:
        """d x S: the HOG of the target cropped at each sampled size around `size`, resized to the model
        size, one column a size, weighted by a window along the scale axis."""
        height, width = frame.shape[:2]
        mw, mh = self.model_size
        patches = np.empty((len(self.sample_factors), mh, mw, 3), dtype=np.uint8)
        for patch, factor in zip(patches, self.sample_factors):
            w, h = np.maximum(size * factor, 2)
            x0, y0 = int(np.floor(center[0] - w / 2)), int(np.floor(center[1] - h / 2))
            x1, y1 = x0 + int(np.ceil(w)), y0 + int(np.ceil(h))
            region = frame[max(y0, 0):min(y1, height), max(x0, 0):min(x1, width)]
            if region.size == 0:
                patch[:] = frame.reshape(-1, 3).mean(axis=0)
                continue
            region = cv2.copyMakeBorder(region, max(-y0, 0), max(y1 - height, 0), max(-x0, 0), max(x1 - width, 0),
                                        cv2.BORDER_REPLICATE)
            shrink = region.shape[1] > mw
            cv2.resize(region, (mw, mh), dst=patch, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        features = fhog(patches, self.settings.cell).reshape(len(patches), -1)
        return (features * self.window[:, None]).T

    def _fit(self, samples: np.ndarray, rate: float) -> None:
        self.numerator_samples = (1 - rate) * self.numerator_samples + rate * samples
        self._project_model()
        projected = np.fft.fft(project(orthonormal_basis(samples), samples), axis=1)
        self.denominator = (1 - rate) * self.denominator + rate * (projected * np.conj(projected)).real.sum(axis=0)

    def _project_model(self) -> None:
        """The model's projection (fDSST: onto the model's own span) and its numerator, from its samples."""
        self.basis = orthonormal_basis(self.numerator_samples)
        self.numerator = self.wanted * np.conj(np.fft.fft(project(self.basis, self.numerator_samples), axis=1))

    def state(self) -> dict:
        """What the filter has learnt, the rest following from it: from_state goes on from here."""
        return {"model_size": list(self.model_size), "numerator_samples": self.numerator_samples,
                "denominator": self.denominator}

    @classmethod
    def from_state(cls, settings: DSSTConfig, state: dict) -> ScaleFilter:
        scale_filter = cls(settings)
        scale_filter.model_size = tuple(int(v) for v in state["model_size"])
        scale_filter.numerator_samples = state["numerator_samples"]
        scale_filter.denominator = state["denominator"]
        scale_filter._project_model()
        return scale_filter

    def estimate(self, frame: np.ndarray, center: np.ndarray, size: np.ndarray) -> float:
        """The factor by which the target's size changed from `size` (the filter's peak along scale)."""
        s = self.settings
        samples = self.samples(frame, center, size)
        self._estimated = (frame, center.copy(), size.copy(), samples)
        spectrum = np.fft.fft(project(self.basis, samples), axis=1)
        response = (self.numerator * spectrum).sum(axis=0) / (self.denominator + s.regularisation)
        response = np.fft.ifft(resize_spectrum(response, s.interpolated)).real
        return float(self.changes[int(np.argmax(response))])

    def learn(self, frame: np.ndarray, center: np.ndarray, size: np.ndarray) -> None:
        self._fit(self._samples_to_learn(frame, center, size), self.settings.learning_rate)

    def _samples_to_learn(self, frame: np.ndarray, center: np.ndarray, size: np.ndarray) -> np.ndarray:
        """The samples of the box learnt from: the estimate's own when the box is the one it sampled (the
        size did not change, most frames), so that such a frame is cropped and described once."""
        estimated_frame, estimated_center, estimated_size, samples = self._estimated or (None, None, None, None)
        same_box = np.array_equal(center, estimated_center) and np.array_equal(size, estimated_size)
        return samples if frame is estimated_frame and same_box else self.samples(frame, center, size)
