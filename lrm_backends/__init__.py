"""lrm_backends: the top layer of lrm-bench.

Backends and their pluggy registry, the glue that makes plain ``lm_eval`` see our
tasks and models, the post-hoc per-response hook, and the ``lrm`` command line.
Importing this package is free: it runs at every interpreter start through
``lrm_bench_autoload.pth`` (see ``lrm_backends._autoload``), so it imports nothing.
"""
