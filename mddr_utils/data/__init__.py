"""Data: one video's features, batches, cohorts, where they come from, and how they are packed for
training at corpus scale (sections 3.1, 4.1, 4.3)."""
from .scales import BDI_II, LABEL_SCALES, PHQ_8, LabelScale, scale_by_name
from .container import AUDIO_RATE_HZ, Batch, Cohort, VideoFeatures, collate
from .packed import PackedCohort, pack_cohort
from .simulation import SimulationCohort, SimulationSettings, make_simulation_cohort
from .avec import AvecIndexWarning, index_avec2013, index_avec2014, subject_overlap
from .demo_cohort import DEMO_COHORT_PROFILES, demo_cohort_cues, make_demo_cohort, planted_cues, write_demo_video

__all__ = [
    "BDI_II", "LABEL_SCALES", "PHQ_8", "LabelScale", "scale_by_name",
    "AUDIO_RATE_HZ", "Batch", "Cohort", "VideoFeatures", "collate",
    "PackedCohort", "pack_cohort",
    "SimulationCohort", "SimulationSettings", "make_simulation_cohort",
    "AvecIndexWarning", "index_avec2013", "index_avec2014", "subject_overlap",
    "DEMO_COHORT_PROFILES", "demo_cohort_cues", "make_demo_cohort", "planted_cues", "write_demo_video",
]
