"""Labelling transcripts: the one read -> segment -> score loop, the one predictions schema,
batch runs with their journal, Spark, and the HTML report.

Imports `transcripts`, `models`, `qda` (export), `tracking`; never training, assist or the CLI.
"""
