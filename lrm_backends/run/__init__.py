"""The run layer: lm-eval glue, the evaluation session, validation, cache, recording.

Importing this package imports nothing.
"""
