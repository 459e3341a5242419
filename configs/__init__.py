"""This folder ships inside the package as supportlens.resources.configs (pyproject.toml, package-dir),
so that `--config tfidf` works in any folder. A regular package, because an editable install only
maps a folder that has an __init__.py."""
