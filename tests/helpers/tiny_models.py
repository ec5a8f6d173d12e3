"""A tiny Llama (HF format) and its GGUF conversion, built offline in a second or two.

Reusable by any test that needs a real model without the Hub::

    from helpers.tiny_models import build_tiny_hf_model, build_tiny_gguf
    hf_dir = build_tiny_hf_model(tmp_path / "hf")            # LlamaForCausalLM + tokenizer
    gguf = build_tiny_gguf(hf_dir, tmp_path / "tiny.gguf")   # F32, llama.cpp-loadable

(``tests/conftest.py`` wraps the first as the session fixture ``tiny_hf_dir``).

The model: byte-level BPE (GPT-2 style, ChatML template, ``<think>``/``</think>`` as
ordinary added tokens), 2 layers, hidden 64, 4 query heads over 2 KV heads (so the
grouped-query and q/k permutation paths are exercised), untied output, weights
large enough that the logits vary by several nats (a conversion bug shows).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")  # control tokens
THINK_TOKENS = ("<think>", "</think>")  # ordinary added tokens, as in R1's tokenizer
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
TINY_CONFIG = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=512,
    rms_norm_eps=1e-5,
    rope_theta=10000.0,
    tie_word_embeddings=False,
)
VOCAB_SIZE = 400
SEED = 1234
# Default init (std 0.02) gives near-uniform logits that any bug would still "match";
# std 0.15 spreads them over several nats.
WEIGHT_STD = 0.15

_CORPUS = [
    "The quick brown fox jumps over the lazy dog. " * 3,
    "Find the number of ordered pairs of positive integers (m, n) such that m + n = 100.",
    "Let x, y and z be real numbers. The answer is \\boxed{25}. Therefore the answer is 42.",
    "<think>\nOkay, so I need to find the answer. Let me think step by step.\n</think>",
    "Today, Emily woke up at 5am. Between what times could they have gone to the park?",
    "Options:\n(A) 6pm to 9pm\n(B) 7am to 11am\n(C) 1pm to 2pm\n(D) 3pm to 5pm",
    "Question: Who is the spouse of the performer? Answer: Paris, France.",
    "0123456789 " * 4 + "1000 2024 3.14159 -7 +5 = 12",
    "All people who regularly drink coffee are dependent on caffeine. True, False or Uncertain?",
]


def build_tiny_tokenizer(path: str | Path):
    """Train a byte-level BPE tokenizer on a fixed corpus and save it (HF format) at
    ``path``; return the ``PreTrainedTokenizerFast``."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE - len(THINK_TOKENS),
        min_frequency=1,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_CORPUS, trainer=trainer)
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in THINK_TOKENS])
    hf_tok = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|endoftext|>",
        eos_token="<|im_end|>",
        unk_token=None,
        pad_token="<|endoftext|>",
        additional_special_tokens=["<|im_start|>"],
    )
    hf_tok.chat_template = CHATML_TEMPLATE
    hf_tok.save_pretrained(str(path))
    return hf_tok


def build_tiny_hf_model(path: str | Path) -> Path:
    """Write a tiny random ``LlamaForCausalLM`` plus tokenizer to ``path`` (created),
    loadable with ``from_pretrained(path)`` and lm-eval's ``hf`` model; return it."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tok = build_tiny_tokenizer(path)
    config = LlamaConfig(
        vocab_size=len(tok),
        bos_token_id=tok.convert_tokens_to_ids("<|endoftext|>"),
        eos_token_id=tok.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tok.convert_tokens_to_ids("<|endoftext|>"),
        initializer_range=WEIGHT_STD,
        **TINY_CONFIG,
    )
    torch.manual_seed(SEED)
    model = LlamaForCausalLM(config).float().eval()
    with torch.no_grad():  # non-trivial norm weights, so a dropped norm shows
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
    model.generation_config.do_sample = False
    model.save_pretrained(str(path))
    return path


def _permute_qk(w: np.ndarray, n_head: int) -> np.ndarray:
    """HF's rotate-half q/k row order -> llama.cpp's interleaved pairs.

    Same as ``LlamaModel.permute`` in llama.cpp's convert_hf_to_gguf.py.
    """
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def build_tiny_gguf(hf_path: str | Path, out_path: str | Path, *, split_max_tensors: int = 0) -> Path:
    """Convert the HF Llama at ``hf_path`` (from :func:`build_tiny_hf_model`) to an F32
    GGUF at ``out_path``; return the path to load (the first part when split).

    ``split_max_tensors`` > 0 writes llama.cpp-style parts
    ``<stem>-00001-of-0000N.gguf`` as the Unsloth quants ship.  Only the ``gguf`` and
    ``safetensors`` packages are used (no torch), mirroring convert_hf_to_gguf.py's
    Llama path: hyperparameters, GPT-2 BPE vocab with merges and token types, q/k
    permutation, tensor names from ``gguf.get_tensor_name_map``.
    """
    import gguf
    from safetensors.numpy import load_file

    hf_path, out_path = Path(hf_path), Path(out_path)
    cfg = json.loads((hf_path / "config.json").read_text())
    tok_json = json.loads((hf_path / "tokenizer.json").read_text())
    tok_cfg = json.loads((hf_path / "tokenizer_config.json").read_text())
    n_layer, n_head, n_kv = cfg["num_hidden_layers"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    rope_theta = cfg.get("rope_theta") or (cfg.get("rope_parameters") or {}).get("rope_theta", 10000.0)

    # Vocabulary: BPE vocab plus added tokens, by id.
    vocab: dict[int, str] = {i: t for t, i in tok_json["model"]["vocab"].items()}
    types = {i: gguf.TokenType.NORMAL for i in vocab}
    for added in tok_json["added_tokens"]:
        vocab[added["id"]] = added["content"]
        types[added["id"]] = gguf.TokenType.CONTROL if added["special"] else gguf.TokenType.USER_DEFINED
    n_vocab = cfg["vocab_size"]
    tokens = [vocab.get(i, f"[PAD{i}]") for i in range(n_vocab)]
    token_types = [types.get(i, gguf.TokenType.UNUSED) for i in range(n_vocab)]
    merges = [m if isinstance(m, str) else " ".join(m) for m in tok_json["model"]["merges"]]
    token_id = {t: i for i, t in enumerate(tokens)}

    w = gguf.GGUFWriter(out_path, "llama", split_max_tensors=split_max_tensors)
    w.add_name(hf_path.name)
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_block_count(n_layer)
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(n_head)
    w.add_head_count_kv(n_kv)
    w.add_rope_dimension_count(cfg["hidden_size"] // n_head)
    w.add_rope_freq_base(float(rope_theta))
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    w.add_vocab_size(n_vocab)
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("gpt-2")  # = HF ByteLevel(use_regex=True)'s GPT-2 split regex
    w.add_token_list(tokens)
    w.add_token_types(token_types)
    w.add_token_merges(merges)
    w.add_bos_token_id(token_id[tok_cfg.get("bos_token") or "<|endoftext|>"])
    w.add_eos_token_id(token_id[tok_cfg.get("eos_token") or "<|im_end|>"])
    w.add_pad_token_id(token_id[tok_cfg.get("pad_token") or "<|endoftext|>"])
    w.add_add_bos_token(False)  # as the HF tokenizer: no BOS added by encode()
    if tok_cfg.get("chat_template") or (hf_path / "chat_template.jinja").exists():
        template = tok_cfg.get("chat_template") or (hf_path / "chat_template.jinja").read_text()
        w.add_chat_template(template)

    name_map = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, n_layer)
    for name, arr in load_file(str(hf_path / "model.safetensors")).items():
        arr = arr.astype(np.float32)
        if name.endswith("self_attn.q_proj.weight"):
            arr = _permute_qk(arr, n_head)
        elif name.endswith("self_attn.k_proj.weight"):
            arr = _permute_qk(arr, n_kv)
        new_name = name_map.get_name(name, try_suffixes=(".weight", ".bias"))
        if new_name is None:
            raise ValueError(f"no GGUF name for HF tensor {name!r}")
        w.add_tensor(new_name, np.ascontiguousarray(arr))

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    parts = w.format_shard_names(out_path)
    return parts[0]
