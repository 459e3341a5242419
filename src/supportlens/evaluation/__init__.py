"""How well codes agree: metrics, agreement statistics, codings compared, plots.

Pure functions over labels and probabilities (and the files of two codings). Imports `corpus`,
`qda`, `codebook`, `calibration` and `io`; never a model, MLflow, inference or the CLI (evaluating a
saved model as a tracked run is `supportlens.training.evaluate_run`).
"""
