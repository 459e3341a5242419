"""The coded corpus: excerpts people coded, as a validated `datasets.Dataset`, and its splits.

Owns reading coded data (CSV/TSV/JSONL/XLSX/.qdpx and coding sheets), its checks and notes,
interview-grouped splits and folds, and the coding sheet itself (`sheets`: its columns, writing
one, reading a filled one back), which training, evaluation and active learning all need. Imports
`io`, `transcripts`, `qda`, `config` and `codebook`; never models, inference, the CLI or MLflow.
"""
