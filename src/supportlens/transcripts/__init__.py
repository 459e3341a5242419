"""Transcripts in: reading every supported format into text with cues, and segmenting it.

Owns `read` (files and bytes -> `Transcript`, with exact character offsets, encodings and notes)
and `segmentation` (turns -> passages under a model's token window, speaker roles). Pure of any
model: imports only `supportlens.io`.
"""
