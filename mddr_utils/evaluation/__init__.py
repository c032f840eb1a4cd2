"""The protocol behind the paper's tables (section 5: Tables 1-4, Figure 4; metrics of section 4.2).

Every row of every table is made the same way:

1. train on Training and select the checkpoint (epoch) on Development: `train.fit` keeps the
   epoch with the lowest Development RMSE; Testing is never passed to training or selection;
2. evaluate Testing once, with that checkpoint; scores are clamped to the label scale's range
   (BDI-II: [0, 63]) and computed in float32;
3. MAE and RMSE over all Testing predictions at once (section 4.2), per video and per recording
   (AVEC2014 scores a recording as the mean of its Freeform and Northwind predictions);
4. repeat for several seeds: mean ± standard deviation over seeds, and a 95% bootstrap interval
   that resamples Testing recordings.

A row whose input cannot be computed (pretrained weights not available, say) is recorded as not
computed, with the reason, never as a number. One module per concern:

- `rows`: the rows of Tables 1, 3, 4 and Figure 4, defined once;
- `runs`: one row trained and scored seed by seed, the saved runs that are reused, and a table's
  runs spread over processes under torchrun;
- `stats`: clamping, per-recording scores, bootstrap intervals, the seeds' summary;
- `tables`: the paper's numbers beside ours, captions, the saved table files;
- `paper`: the paper's published numbers;
- `crossval`: DRLoss's δ by cross-validation.
"""
