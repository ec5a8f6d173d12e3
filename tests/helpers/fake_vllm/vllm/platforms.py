"""vllm.platforms.current_platform: the fake runs on CPUs (Ray grants it CPUs, not GPUs)."""


class _CpuPlatform:
    def is_cpu(self) -> bool:
        return True


current_platform = _CpuPlatform()
