"""Help for human coders: what to code next (active learning) and which codes look wrong (audit).

Imports `inference` (to read and score passages), `corpus`, `evaluation`, `training`; never the CLI.
"""
