"""Labelling transcripts: the model as a `labeler`, the one read -> segment -> score `loop`, batch
runs with their journal (`predict`), a .qdpx project (`qdpx`), Spark, and the HTML report.

The predictions table they all write and read is `supportlens.schema`, at the top level so that
`tracking` (below this package) serves the same columns from its pyfunc model.

Imports `schema`, `transcripts`, `models`, `qda` (export), `tracking`; never training, assist or the CLI.
"""
