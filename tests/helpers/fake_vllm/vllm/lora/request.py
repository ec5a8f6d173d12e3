"""vllm.lora.request.LoRARequest, as far as lm-eval uses it."""


class LoRARequest:
    def __init__(self, name: str, int_id: int, path: str) -> None:
        self.name, self.int_id, self.path = name, int_id, path
