"""REFI-QDA projects (.qdpx) and codebooks (.qdc): the format QDA software exchanges.

Owns reading a project, importing its codings as coded excerpts, and writing codebooks and
projects of suggestions from a predictions table: `project` (the project model, its human work,
writing it safely), `importing` (codings -> excerpts), `exporting` (codebook, suggestions). Labelling
straight into a project runs a model, so it lives in `supportlens.inference.qdpx`. Imports `io`,
`transcripts`, `codebook` and `calibration`; never the models, inference, the CLI or MLflow.
"""
