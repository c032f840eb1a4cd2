"""Face detection and crops: geometry of the square crop, MTCNN on a face, frames without a face."""
import numpy as np
import pytest
import torch
from skimage.data import astronaut
from skimage.transform import resize

from mddr_utils.features.faces import FaceCropper, square_crop, torch_threads

# MTCNN's box of the astronaut's face in the 512x512 photograph, (x0, y0, x1, y1).
ASTRONAUT_FACE = np.array([181.0, 62.0, 268.0, 172.0])


def test_square_crop_is_centred_on_the_box_with_its_margin():
    frame = np.zeros((100, 200, 3), np.uint8)
    frame[40:60, 90:110] = 255  # a 20x20 white square
    crop = square_crop(frame, (90, 40, 110, 60), size=40, margin=0.5)  # 40x40 window around it
    assert crop.shape == (40, 40, 3)
    assert crop[10:30, 10:30].min() == 255
    assert crop[:8].max() == 0 and crop[32:].max() == 0


def test_square_crop_pads_outside_the_frame_with_black():
    frame = np.full((50, 50, 3), 200, np.uint8)
    crop = square_crop(frame, (0, 0, 20, 20), size=40, margin=0.5)  # window from -10 to 30
    assert crop[:8, :8].max() == 0
    assert crop[12:, 12:].min() == 200


def test_square_crop_refuses_an_empty_box():
    with pytest.raises(ValueError, match="empty"):
        square_crop(np.zeros((10, 10, 3), np.uint8), (5, 5, 5, 5))


@pytest.fixture(scope="module")
def cropper():
    return FaceCropper(crop_size=64, detect_max_side=160)


def test_detection_on_a_shrunk_copy_gives_full_frame_boxes(cropper):
    photo = astronaut()
    result = cropper([photo, photo])
    assert result.found.tolist() == [True, True]
    assert np.abs(result.boxes[0] - ASTRONAUT_FACE).max() < 12  # detected at 160 px, reported at 512 px
    assert result.crops.shape == (2, 64, 64, 3) and result.crops.dtype == np.uint8
    assert result.scores[0] > 0.9


def test_frames_without_a_face_are_flagged_and_black(cropper):
    gradient = (resize(np.linspace(0, 1, 64)[None, :, None], (240, 320, 3)) * 255).astype(np.uint8)
    frames = [gradient, (resize(astronaut(), (240, 240)) * 255).astype(np.uint8)[:, :, :3]]
    with pytest.raises(ValueError, match="same size"):
        cropper(frames)
    result = cropper([gradient, gradient])
    assert result.found.tolist() == [False, False]
    assert not result.crops.any() and not result.boxes.any()


def test_detector_threads_are_restored():
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
