"""Face detection and 224x224 face crops for the visual features (paper sections 3.2, 4.3).

"We extracted one frame out of every 100 for AVEC 2013 and four frames out of every 100 for
AVEC 2014, cropping the images to a size of 224x224 pixels" (section 4.3). The paper does not
say how faces are found; here MTCNN (facenet-pytorch, weights shipped with the package) finds
them, the largest face of each frame is kept, and a square crop around it with a margin is
resized to 224x224. Frames without a face are flagged, never silently filled with something
else: their crop is black and `found` is False, and the pipeline stores zeros and
`visual_valid = False` for them.

MTCNN is the costliest step per frame on a CPU (benchmarks/README.md), so it
runs on a copy of each frame shrunk to `detect_max_side` pixels, skips pyramid scales below the
smallest face an interview can hold (`min_face_fraction` of the shorter side), and the crop is
cut from the full frame with the box scaled back. Its networks run channels-last, and its many
small tensor operations run faster on one thread than on several (the threads mostly wait for
each other, and far worse on a busy machine), so detection runs with `detector_threads` torch
threads (default 1).
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch


class NoFaceError(ValueError):
    """No face was found in any sampled frame of a video."""


@dataclass
class FaceCrops:
    """Face crops of a list of frames: `crops` [N, S, S, 3] uint8 (black where `found` is False)."""

    crops: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    found: np.ndarray

    def __len__(self) -> int:
        return len(self.found)


def square_crop(frame: np.ndarray, box: Sequence[float], size: int = 224, margin: float = 0.2) -> np.ndarray:
    """Cut the square centred on `box` (x0, y0, x1, y1), side (1 + 2 margin) x its longer side, resized to `size`.

    Parts of the square outside the frame are black, so a face at the border is not stretched.
    """
    x0, y0, x1, y1 = (float(v) for v in box)
    side = max(x1 - x0, y1 - y0) * (1.0 + 2.0 * margin)
    if side < 1:
        raise ValueError(f"face box {tuple(box)} is empty")
    left = int(round((x0 + x1) / 2 - side / 2))
    top = int(round((y0 + y1) / 2 - side / 2))
    extent = int(round(side))
    height, width = frame.shape[:2]
    canvas = np.zeros((extent, extent, 3), dtype=np.uint8)
    src_x0, src_y0 = max(left, 0), max(top, 0)
    src_x1, src_y1 = min(left + extent, width), min(top + extent, height)
    if src_x1 > src_x0 and src_y1 > src_y0:
        canvas[src_y0 - top:src_y1 - top, src_x0 - left:src_x1 - left] = frame[src_y0:src_y1, src_x0:src_x1]
    interpolation = cv2.INTER_AREA if extent > size else cv2.INTER_LINEAR
    return cv2.resize(canvas, (size, size), interpolation=interpolation)


@contextlib.contextmanager
def torch_threads(count: int | None) -> Iterator[None]:
    """Run the block with `count` intra-op torch threads (None: leave the setting alone)."""
    previous = torch.get_num_threads()
    if count is not None and count != previous:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        if torch.get_num_threads() != previous:
            torch.set_num_threads(previous)


class FaceCropper:
    """MTCNN on a shrunk copy of each frame, the largest confident face, a square crop from the full frame."""

    def __init__(self, crop_size: int = 224, margin: float = 0.2, detect_max_side: int = 320,
                 min_face_fraction: float = 0.15, min_confidence: float = 0.9,
                 device: str | torch.device = "cpu", detector_threads: int | None = 1):
        self.crop_size = crop_size
        self.margin = margin
        self.detect_max_side = detect_max_side
        self.min_face_fraction = min_face_fraction
        self.min_confidence = min_confidence
        self.device = torch.device(device)
        self.detector_threads = detector_threads
        self._detectors: dict[int, torch.nn.Module] = {}

    def _detector(self, detect_shape: tuple[int, int]):
        # MTCNN's image pyramid starts at its minimum face size; tying that size to the frame
        # skips the largest, costliest scales, where only faces too small for an interview appear.
        min_face = max(20, int(round(self.min_face_fraction * min(detect_shape))))
        if min_face not in self._detectors:
            from facenet_pytorch import MTCNN

            detector = MTCNN(min_face_size=min_face, keep_all=True, select_largest=True, device=self.device).eval()
            # The frames arrive as [N, H, W, 3], so MTCNN's inputs are channels-last already; with its
            # weights channels-last too, its convolutions and max-pools run about twice as fast on a CPU.
            self._detectors[min_face] = detector.to(memory_format=torch.channels_last)
        return self._detectors[min_face]

    def detect(self, frames: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Boxes [N, 4] in full-frame pixels, scores [N] and found [N] of the largest confident face per frame."""
        count = len(frames)
        boxes = np.zeros((count, 4), dtype=np.float32)
        scores = np.zeros(count, dtype=np.float32)
        found = np.zeros(count, dtype=bool)
        if count == 0:
            return boxes, scores, found
        height, width = frames[0].shape[:2]
        if any(frame.shape[:2] != (height, width) for frame in frames):
            raise ValueError("all frames of one detect() call must have the same size")
        scale = min(1.0, self.detect_max_side / max(height, width))
        detect_size = (max(1, int(round(width * scale))), max(1, int(round(height * scale))))
        small = np.stack([frame if scale == 1.0 else cv2.resize(frame, detect_size, interpolation=cv2.INTER_AREA)
                          for frame in frames])
        with torch.inference_mode(), torch_threads(self.detector_threads if self.device.type == "cpu" else None):
            batch_boxes, batch_probs = self._detector(small.shape[1:3]).detect(small)
        for index, (candidates, probabilities) in enumerate(zip(batch_boxes, batch_probs)):
            if candidates is None:
                continue
            candidates = np.asarray(candidates, dtype=np.float64).reshape(-1, 4)
            probabilities = np.asarray(probabilities, dtype=np.float64).reshape(-1)
            confident = probabilities >= self.min_confidence
            if not confident.any():
                continue
            areas = (candidates[:, 2] - candidates[:, 0]) * (candidates[:, 3] - candidates[:, 1])
            best = int(np.argmax(np.where(confident, areas, -np.inf)))
            boxes[index] = candidates[best] / scale
            scores[index] = probabilities[best]
            found[index] = True
        return boxes, scores, found

    def __call__(self, frames: Sequence[np.ndarray]) -> FaceCrops:
        """Detect and crop: one crop per frame, black where no face was found."""
        boxes, scores, found = self.detect(frames)
        crops = np.zeros((len(frames), self.crop_size, self.crop_size, 3), dtype=np.uint8)
        for index in np.flatnonzero(found):
            crops[index] = square_crop(frames[index], boxes[index], self.crop_size, self.margin)
        return FaceCrops(crops=crops, boxes=boxes, scores=scores, found=found)
