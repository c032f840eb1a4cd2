"""Features: frames, audio and the pre-extracted features of each modality (sections 3.2, 4.3)."""
from .video import FrameLayout, frame_layout, load_audio, sample_frames
from .faces import FaceCropper, NoFaceError
from .visual import VisualEncoder, resnet50_backbone
from .acoustic import HubertEncoder, hubert_frame_count, load_hubert
from .head import HEAD_COLUMNS, HeadPoseGazeEstimator, match_openface, read_openface_csv
from .cache import FeatureCache
