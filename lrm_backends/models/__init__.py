"""Backends: the engines lrm-bench runs models with."""
