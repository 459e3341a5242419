"""REFI-QDA projects (.qdpx) and codebooks (.qdc): the format QDA software exchanges.

Owns reading a project, importing its codings as coded excerpts, and writing codebooks and
projects of suggestions from a predictions table. Imports `io`, `transcripts`, `codebook` and
`calibration`; never the models, inference, the CLI or MLflow.
"""
