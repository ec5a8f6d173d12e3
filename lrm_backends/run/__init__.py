"""The run layer: what lrm-bench does around one lm-eval evaluation."""
