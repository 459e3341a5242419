"""Training runs: load -> split -> fit -> calibrate -> evaluate -> save -> track; configs
compared; the model card; a saved model evaluated on a coded file as a run (`evaluate_run`).

Owns the training outline and runs that log to MLflow (through `supportlens.tracking`). Imports
`corpus`, `models`, `evaluation`, `tracking`, and `inference` (comparing configs labels gold-coded
transcripts through the one read -> segment -> score loop); never assist or the CLI.
"""
