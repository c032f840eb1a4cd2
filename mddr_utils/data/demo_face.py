"""The demo cohort's faces (see `demo_cohort`): the head of scikit-image's bundled astronaut
photograph, cut from its backdrop, rendered frame by frame with head rotation (the perspective
projection of the face plane), translation, breathing-like scale changes, a mouth that opens with
the voice's articulation, brows that rise now and then and mouth corners that lower with the
label, over a still torso and a plain vertical gradient."""
from __future__ import annotations

from contextlib import contextmanager
from functools import lru_cache

import numpy as np
import torch
from scipy import ndimage
from scipy.ndimage import gaussian_filter1d
from skimage.color import rgb2hsv
from skimage.data import astronaut

from .demo_voice import CONTROL_RATE

# Landmarks of skimage.data.astronaut() in its 512x512 pixels (MTCNN: eyes (205, 102) and
# (247, 104), mouth corners (202, 139) and (245, 142)); the head spans hair (row 14) to neck.
_HEAD_CENTER = (227.0, 96.0)
_HEAD_BOX = (140.0, 8.0, 314.0, 190.0)
_NECK_HALF_WIDTH = 36.0
_MOUTH = (224.0, 143.0)
_MOUTH_CORNERS = ((202.0, 139.0), (245.0, 142.0))
_BROW_ROW = 86.0
_CHIN_ROW = 168.0
_MAX_MOUTH_OPENING = 8.0
_MAX_BROW_RAISE = 3.5
_MAX_CORNER_DROP = 3.5
_HEAD_HEIGHT_IN_FRAME = 0.62
_HEAD_HEIGHT = 164.0
_SHOULDER_ROW = 174.0
_CAMERA_DISTANCE = 700.0


def face_motion(rng: np.random.Generator, num_frames: int, fps: int, cues: dict,
                 articulation: np.ndarray) -> dict[str, np.ndarray]:
    """Per-frame head rotation (degrees), translation, scale, mouth opening, brow raise, corner drop."""
    times = np.arange(num_frames) / fps
    rotation = np.stack([smooth_wander(rng, times) * weight for weight in (1.0, 0.7, 0.45)])
    rotation *= cues["head_motion_deg"] / np.sqrt(np.mean(np.sum(rotation ** 2, axis=0)))
    expressivity = cues["expressivity"]
    control_times = np.arange(len(articulation)) / CONTROL_RATE
    mouth = np.interp(times, control_times, gaussian_filter1d(articulation, 0.015 * CONTROL_RATE))
    brows = bumps(rng, times, rate=0.35 * expressivity, width=0.7) * _MAX_BROW_RAISE * rng.uniform(0.6, 1.0)
    smiles = bumps(rng, times, rate=0.12 * expressivity, width=2.0)
    corner_drop = _MAX_CORNER_DROP * (1 - expressivity) * (1 - np.clip(smiles, 0, 1))
    return dict(
        yaw=rotation[0], pitch=rotation[1], roll=rotation[2],
        shift_x=0.8 * rotation[0] + 1.5 * smooth_wander(rng, times),
        shift_y=0.6 * rotation[1] + 0.8 * smooth_wander(rng, times),
        scale=1.0 + 0.01 * np.sin(2 * np.pi * 0.22 * times + rng.uniform(0, 2 * np.pi)),
        mouth=_MAX_MOUTH_OPENING * (0.3 + 0.7 * expressivity) * mouth,
        brows=brows, corner_drop=corner_drop,
    )


def expression_fractions(motion: dict) -> dict[str, np.ndarray]:
    """The expression `face_motion` planned, per frame, as fractions (0..1) of the largest the renderer draws:
    mouth_open (jaw drop), brow_raise and corner_drop (mouth corners lowered, the photograph's smile flattened)."""
    return dict(mouth_open=np.asarray(motion["mouth"]) / _MAX_MOUTH_OPENING,
                brow_raise=np.asarray(motion["brows"]) / _MAX_BROW_RAISE,
                corner_drop=np.asarray(motion["corner_drop"]) / _MAX_CORNER_DROP)


def smooth_wander(rng: np.random.Generator, times: np.ndarray) -> np.ndarray:
    """Slow random movement with unit RMS: four sinusoids of 0.08-0.7 Hz, slower ones larger."""
    frequencies = np.exp(rng.uniform(np.log(0.08), np.log(0.7), size=4))
    phases = rng.uniform(0, 2 * np.pi, size=4)
    wave = (np.sin(2 * np.pi * frequencies[:, None] * times + phases[:, None]) / np.sqrt(frequencies)[:, None]).sum(0)
    return wave / max(np.sqrt(np.mean(wave ** 2)), 1e-9)


def bumps(rng: np.random.Generator, times: np.ndarray, rate: float, width: float) -> np.ndarray:
    """Raised-cosine events (height 1, `width` seconds long) at Poisson times of `rate` per second."""
    duration = times[-1] + 1e-9 if len(times) else 0.0
    track = np.zeros_like(times)
    for centre in rng.uniform(0, duration, size=rng.poisson(rate * duration)):
        near = np.abs(times - centre) < width / 2
        track[near] = np.maximum(track[near], 0.5 * (1 + np.cos(2 * np.pi * (times[near] - centre) / width)))
    return track


@contextmanager
def one_torch_thread():
    """Render with one torch thread: the arrays are small (the head's rectangle of 32 frames).

    Measured on a busy 2-core machine: with two torch threads a video took 2-4 times longer.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@lru_cache(maxsize=1)
def _astronaut() -> torch.Tensor:
    """The photograph as a float tensor [1, 3, 512, 512] in 0..1."""
    return torch.from_numpy(astronaut()).permute(2, 0, 1)[None].float().div_(255)


@lru_cache(maxsize=1)
def _deformation_maps() -> torch.Tensor:
    """Per photograph pixel: how far it moves per unit of jaw drop, brow raise and corner drop,
    the head's opacity, and the mouth gap's horizontal profile; [1, 5, 512, 512] float32.

    The face deforms by moving rows only: an output point at (u, v) shows the photograph at
    row v - mouth * jaw + brows * brow - corner_drop * corner, so the movements are these fixed
    maps times three numbers per frame.
    """
    v, u = np.mgrid[0:512, 0:512].astype(np.float64)

    def smoothstep(x):
        x = np.clip(x, 0, 1)
        return x * x * (3 - 2 * x)

    mouth_u, mouth_v = _MOUTH
    jaw = (1 - smoothstep((np.abs(u - mouth_u) - 28) / 20)) * smoothstep((v - mouth_v + 4) / 14) \
        * (1 - smoothstep((v - _CHIN_ROW) / 14))
    brow = (1 - smoothstep((np.abs(u - 226) - 34) / 12)) * np.exp(-((v - _BROW_ROW) / 9) ** 2)
    corner = sum(np.exp(-((u - cu) ** 2 + (v - cv) ** 2) / 72) for cu, cv in _MOUTH_CORNERS)
    opacity = _head_opacity()
    gap_across = np.exp(-((u - mouth_u) / 19) ** 4)
    return torch.from_numpy(np.stack([jaw, brow, corner, opacity, gap_across])[None]).float()


def _head_opacity() -> np.ndarray:
    """The head's silhouette in the photograph, 0..1 with a soft edge.

    The studio backdrop behind the head is pale grey (HSV saturation below 0.1) while hair and
    skin are saturated (above 0.25): the head is the largest saturated region in its box, holes
    (teeth, the whites of the eyes) filled, cut to the neck below the chin.
    """
    image = astronaut()
    v, u = np.mgrid[0:512, 0:512]
    left, top, right, bottom = _HEAD_BOX
    head = (rgb2hsv(image)[..., 1] > 0.15) & (u > left) & (u < right) & (v > top) & (v < bottom)
    head &= (v < _CHIN_ROW - 18) | (np.abs(u - _MOUTH[0] - 2) < _NECK_HALF_WIDTH)
    head = ndimage.binary_opening(head, iterations=2)
    regions, count = ndimage.label(head)
    head = regions == 1 + int(np.argmax(ndimage.sum(head, regions, range(1, count + 1))))
    head = ndimage.binary_fill_holes(ndimage.binary_closing(ndimage.binary_fill_holes(head), iterations=3))
    return ndimage.gaussian_filter(head.astype(np.float64), 1.2)


class FaceRenderer:
    """Draws the moving, deforming face over a gradient background, a chunk of frames at a time."""

    chunk = 32

    def __init__(self, size, person: dict):
        self.width, self.height = (int(value) for value in size)
        self.person = person
        self.base_scale = _HEAD_HEIGHT_IN_FRAME * self.height / _HEAD_HEIGHT * person["scale"]
        self.centre = (self.width / 2 + person["offset"][0], 0.47 * self.height + person["offset"][1])
        rows, columns = np.mgrid[0:self.height, 0:self.width].astype(np.float64)
        top, bottom = np.array(person["top_colour"]), np.array(person["bottom_colour"])
        fraction = (rows / max(self.height - 1, 1))[..., None]
        backdrop = top * (1 - fraction) + bottom * fraction
        # A still torso below the moving head; it covers the neck's lower end, so no seam shows.
        shoulders_top = self.centre[1] + (_SHOULDER_ROW - _HEAD_CENTER[1]) * self.base_scale
        half_width, depth = 1.15 * _HEAD_HEIGHT * self.base_scale, 0.8 * _HEAD_HEIGHT * self.base_scale
        distance = np.hypot((columns - self.centre[0]) / half_width, (rows - shoulders_top - depth) / depth)
        self.torso = torch.from_numpy(np.clip((1 - distance) * depth / 1.5, 0, 1)[..., None]).float()
        self.torso_colour = torch.tensor(person["shirt_colour"], dtype=torch.float32)
        self.backdrop = torch.from_numpy(backdrop).float()
        still = self.torso * self.torso_colour + (1 - self.torso) * self.backdrop
        self.background_rgb = still.mul(255).round_().to(torch.uint8).numpy()

    def frames(self, motion: dict):
        """Yield RGB uint8 frames [H, W, 3]."""
        count = len(motion["yaw"])
        for start in range(0, count, self.chunk):
            part = {name: torch.as_tensor(values[start:start + self.chunk], dtype=torch.float64)
                    for name, values in motion.items()}
            yield from self._render(part)

    def _homographies(self, motion: dict) -> torch.Tensor:
        """Photograph pixel (u, v, 1) -> frame pixel: the face plane rotated in 3-d, then projected."""
        yaw, pitch, roll = (torch.deg2rad(motion[name]) for name in ("yaw", "pitch", "roll"))
        ones, zeros = torch.ones_like(yaw), torch.zeros_like(yaw)

        def rotation(angle, axes):
            matrix = torch.eye(3, dtype=torch.float64).repeat(len(angle), 1, 1)
            i, j = axes
            cos, sin = torch.cos(angle), torch.sin(angle)
            matrix[:, i, i], matrix[:, j, j], matrix[:, i, j], matrix[:, j, i] = cos, cos, -sin, sin
            return matrix

        rotate = rotation(roll, (0, 1)) @ rotation(yaw, (2, 0)) @ rotation(pitch, (1, 2))
        mirror = -1.0 if self.person["mirror"] else 1.0
        centre_face = torch.tensor([[mirror, 0, -mirror * _HEAD_CENTER[0]], [0, 1, -_HEAD_CENTER[1]], [0, 0, 1]],
                                   dtype=torch.float64)
        away = torch.stack([zeros, zeros, ones * _CAMERA_DISTANCE], 1)
        plane = torch.stack([rotate[:, :, 0], rotate[:, :, 1], away], 2)
        scale = self.base_scale * motion["scale"] * _CAMERA_DISTANCE
        place = torch.zeros(len(yaw), 3, 3, dtype=torch.float64)
        place[:, 0, 0], place[:, 1, 1], place[:, 2, 2] = scale, scale, 1
        place[:, 0, 2] = self.centre[0] + motion["shift_x"]
        place[:, 1, 2] = self.centre[1] + motion["shift_y"]
        return place @ plane @ centre_face

    def _render(self, motion: dict):
        homographies = self._homographies(motion)
        x0, y0, x1, y1 = self._bounds(homographies)
        inverse = torch.linalg.inv(homographies).float()
        xs = torch.arange(x0, x1, dtype=torch.float32)[None, None, :]
        ys = torch.arange(y0, y1, dtype=torch.float32)[None, :, None]
        h = [inverse[:, i, j, None, None] for i in range(3) for j in range(3)]
        w = h[6] * xs + h[7] * ys + h[8]
        u = (h[0] * xs + h[1] * ys + h[2]) / w
        v = (h[3] * xs + h[4] * ys + h[5]) / w
        jaw, brow, corner, opacity, gap_across = _sample(_deformation_maps(), u, v).unbind(-1)
        mouth, brows, corner_drop = (motion[name].float()[:, None, None] for name in ("mouth", "brows", "corner_drop"))
        face = _sample(_astronaut(), u, v - mouth * jaw + brows * brow - corner_drop * corner)
        # The parted lips show a dark gap, as tall as the jaw drop, centred below the upper lip.
        across_gap = ((v - _MOUTH[1] - mouth / 2) / (mouth / 2 + 0.5)).square_().neg_().add_(1).clamp_(min=0)
        shade = 1 - 0.75 * (mouth / 3).clamp(0, 1) * gap_across * across_gap.square_()
        alpha = opacity[..., None]
        composed = alpha * face * shade[..., None] + (1 - alpha) * self.backdrop[y0:y1, x0:x1]
        torso = self.torso[y0:y1, x0:x1]
        composed = torso * self.torso_colour + (1 - torso) * composed
        pixels = composed.mul_(255).round_().clamp_(0, 255).to(torch.uint8).numpy()
        for region in pixels:
            frame = self.background_rgb.copy()
            frame[y0:y1, x0:x1] = region
            yield frame

    def _bounds(self, homographies: torch.Tensor) -> tuple[int, int, int, int]:
        """The frame rectangle that holds the head in every frame of the chunk."""
        u0, v0, u1, v1 = _HEAD_BOX
        corners = torch.tensor([[u0, v0, 1], [u1, v0, 1], [u0, v1, 1], [u1, v1, 1]], dtype=torch.float64).T
        projected = homographies @ corners
        x, y = projected[:, 0] / projected[:, 2], projected[:, 1] / projected[:, 2]
        return (max(int(x.min()) - 1, 0), max(int(y.min()) - 1, 0),
                min(int(x.max()) + 2, self.width), min(int(y.max()) + 2, self.height))


def _sample(image: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Bilinear samples of a [1, C, 512, 512] image at photograph pixels (u, v) [F, H, W] -> [F, H, W, C]."""
    frames, rows, columns = u.shape
    grid = torch.stack([u / 511 * 2 - 1, v / 511 * 2 - 1], dim=-1).reshape(1, frames * rows, columns, 2)
    sampled = torch.nn.functional.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=True)
    return sampled[0].reshape(image.shape[1], frames, rows, columns).permute(1, 2, 3, 0)
