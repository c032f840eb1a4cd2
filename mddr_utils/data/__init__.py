"""Data: one video's features, batches, cohorts, and where they come from (sections 3.1, 4.1, 4.3)."""
from .container import AUDIO_RATE_HZ, Batch, Cohort, VideoFeatures, collate
from .simulation import SimulationCohort, SimulationSettings, make_simulation_cohort

__all__ = [
    "AUDIO_RATE_HZ", "Batch", "Cohort", "VideoFeatures", "collate",
    "SimulationCohort", "SimulationSettings", "make_simulation_cohort",
]
