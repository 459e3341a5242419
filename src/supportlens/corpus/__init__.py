"""The coded corpus: excerpts people coded, as a validated `datasets.Dataset`, and its splits.

Owns reading coded data (CSV/TSV/JSONL/XLSX/.qdpx and coding sheets), its checks and notes, and
interview-grouped splits and folds. Imports `io`, `transcripts`, `qda`, `config` and `codebook`;
never models, inference, the CLI or MLflow.
"""
