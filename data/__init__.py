"""The sample transcripts, starter.jsonl and the data card (README.md) ship inside the package as
supportlens.resources.data (pyproject.toml, package-dir), so that `supportlens init` and `train` work
in any folder. A regular package, because an editable install only maps a folder that has an __init__.py."""
