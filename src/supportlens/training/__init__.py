"""Training runs: load -> split -> fit -> calibrate -> evaluate -> save -> track; configs
compared; the model card.

Owns the training outline and runs that log to MLflow (through `supportlens.tracking`). Imports
`corpus`, `models`, `evaluation`, `tracking`; never inference, assist or the CLI.
"""
