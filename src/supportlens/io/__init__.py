"""Files in and out, below every stage: atomic writes, JSONL, workbook sheets, the cache root,
decoding text files, finding a table's columns.

Owns how bytes reach the disk (whole or not at all), where cached artefacts live, and the one
policy by which transcripts and coded data alike are decoded (`decoding`) and their columns found
(`tables`). Imports nothing of supportlens: every other stage may import it.
"""
