"""mddr_utils: the MDDR book's one source of code, ordered like the paper.

The map, in the paper's order:

- `sources`: the one data entry point of every chapter, `load_cohort(dataset, profile, data_dir, ...)`.
- `data` (sections 3.1, 4.1): one video's features, batches and cohorts (`container`); AVEC2013/2014
  indexing (`avec`); DAIC-WOZ and E-DAIC readers (`daic`) and label scales (`scales`, BDI-II and
  PHQ-8); the synthetic demo videos, planned in `demo_cohort`, drawn (`demo_face`), voiced
  (`demo_voice`) and encoded (`demo_video`); the feature-level simulation cohort (`simulation`);
  synthetic DAIC trees (`daic_synthetic`), their sessions rendered and measured by the project (`daic_sessions`).
- `features` (sections 3.2, 4.3): frames and audio (`video`), faces (`faces`), ResNet-50 (`visual`),
  HuBERT (`acoustic`), head pose and gaze (`head`), the feature cache (`cache`), the extraction
  (`pipeline`: all modalities, or one per feature chapter), its command line (`command_line`), and what the feature chapters show of it
  (`report`, `figures`).
- `model` (sections 3.3-3.4): FAA, SEA and the regression head; `baselines` for Table 1.
- `losses` (section 3.5): DRLoss. `metrics` (section 4.2): MAE, RMSE, categories.
- `train` (section 4.3): the recipe, profiles, fit, predict, checkpoints.
- `evaluation` (section 5): how every row of every table is trained, selected and evaluated: saved
  runs (`runs`), scores and intervals (`stats`), tables and captions (`tables`), the paper's numbers
  (`paper`), DRLoss's δ by cross-validation (`crossval`).
- `interpret`, `plots`: attention analyses and figures.
- `predict`, `cli` (`python -m mddr_utils`): a trained model applied to new videos.
- `device`, `distributed`, `progress`, `versioning`: where and in which precision things run, work
  spread over processes under torchrun, progress bars, and the code digest that keys saved results. `book`: display helpers for the chapters.
"""
__version__ = "0.1.0"
