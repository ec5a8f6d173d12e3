"""compressors: pruning (SparseGPT, Wanda, magnitude) and GGUF quantization.

Imports neither ``lrm_tasks`` nor ``lrm_backends``; heavy libraries (torch,
transformers, llama_cpp) are imported inside the functions that need them.
"""
