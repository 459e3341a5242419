"""How well codes agree: metrics, agreement statistics, codings compared, plots.

Pure functions over labels and probabilities (and the files of two codings). Imports `corpus`,
`qda`, `codebook`, `calibration` and `io`; never MLflow, inference or the CLI.
"""
