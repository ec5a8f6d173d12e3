"""vllm.entrypoints.chat_utils.resolve_hf_chat_template, as lm-eval calls it."""


def resolve_hf_chat_template(tokenizer, chat_template=None, tools=None, **_):
    return chat_template or getattr(tokenizer, "chat_template", None)
