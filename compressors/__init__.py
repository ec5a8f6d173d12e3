"""compressors: pruning (SparseGPT, Wanda, magnitude) and GGUF quantization.

Imports neither ``lrm_tasks`` nor ``lrm_backends``. Importing the package is free;
its modules need torch (the pruning ones), transformers (``pipeline``) or
llama-cpp-python (``gguf_quant``, imported inside its functions).

- ``methods``: the table of pruning methods (names, calibration, knobs, help; standard
  library only) that the CLI, ``lrm-pruned``, the pipeline, the manifest and the report read;
- ``masks``: sparsity targets (fraction, N:M) and mask selection;
- ``sparsegpt``, ``wanda``, ``magnitude``: pure tensor functions and the orchestration
  adapter of one method each;
- ``calibration``: seeded calibration windows from a file, the Hub or given texts, and
  their defaults;
- ``orchestrate``: the layer-by-layer walk shared by every pruning method;
- ``pipeline``: load a model, prune it, save safetensors + ``compression.json``;
- ``gguf_quant``: llama.cpp's quantizer; ``manifest``: the ``compression.json`` schema.
"""
