"""Which weight files a local checkpoint folder holds: the safetensors-only policy.

lrm-bench never unpickles a checkpoint (a pickle can run any code when loaded). A folder
whose weights exist only as pickles (``pytorch_model.bin``, ``*.pt``, ``*.pth``,
``*.ckpt``) is refused up front with a message that says how to fix it, before
transformers would fail with a bare "no file named model.safetensors". Standard
library only: the check runs before anything heavy is imported.
"""

from __future__ import annotations

from pathlib import Path

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")


def pickled_weights_only(folder: str | Path) -> list[str]:
    """The pickled weight files of ``folder`` if it holds no ``*.safetensors`` file, else
    ``[]`` (also for a folder that does not exist, or a Hub id).

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "pytorch_model.bin").write_bytes(b"")
    >>> pickled_weights_only(d)
    ['pytorch_model.bin']
    >>> _ = (d / "model.safetensors").write_bytes(b"")
    >>> pickled_weights_only(d)
    []
    """
    path = Path(folder).expanduser()
    if not path.is_dir() or any(path.glob("*.safetensors")):
        return []
    return sorted(p.name for p in path.iterdir() if p.suffix in PICKLE_SUFFIXES and p.is_file())


def pickled_only_message(folder: str | Path, files: list[str]) -> str:
    """Why such a folder is refused, and the ways out."""
    shown = ", ".join(files[:3]) + (f" and {len(files) - 3} more" if len(files) > 3 else "")
    return (
        f"{folder} holds its weights only as pickles ({shown}), and lrm-bench loads checkpoints "
        "from safetensors only (a pickle can run code when loaded). Convert it once where you "
        "trust the file (load it with transformers, then save_pretrained), or use a revision "
        "that ships model.safetensors"
    )
