"""Files in and out, below every stage: atomic writes, JSONL, workbook sheets, the cache root.

Owns how bytes reach the disk (whole or not at all) and where cached artefacts live. Imports
nothing of supportlens: every other stage may import it.
"""
