"""Scoring: from a model's outputs to the numbers each benchmark's official code prints.

- predict.py      run a model over videos, keep per-snippet outputs (VideoPrediction)
- segments.py     outputs -> what is scored: snippet labels (AVE), W-TALC segments
                  (ActivityNet, THUMOS'14), audio and visual events (LLP)
- metrics/        the protocols, one module each, as their official code computes them:
                  ave.py (snippet accuracy), detection.py (mAP@tIoU), parsing.py (LLP F-scores)
- anet_json.py    the official ActivityNet JSON formats (ground truth, results)
- evaluate.py     one split's metrics for a model and a dataset; a run's final numbers
- thresholds.py   LLP event thresholds: the protocol's, tuned on validation
- tune.py         `avloc tune` (localize.* searched on validation) and loading a run's model
                  with its tuned post-processing
- results.py      localization output folders: results.json, cas/<video>.npz
- score_files.py  `avloc score`: a results file against a ground-truth file
- eval_run.py     `avloc eval`: a run scored on one split
- reports.py      what `avloc eval` and `avloc train` print
"""
