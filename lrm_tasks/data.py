"""Loading the benchmarks: the Hugging Face Hub by default, local files offline.

Every loader returns documents in the canonical schema of ``docs/CONTRACTS.md``, each
with its stable ``doc_key`` (AIME ``ID``, BBH row, FOLIO ``example_id``, MuSiQue ``id``).
Set ``LRM_DATA_DIR`` to a folder to load from files there instead of the Hub; each
benchmark's spec (:mod:`lrm_tasks.benchmarks`) names its Hub dataset, its file names
there (``aime24.jsonl``, ``bbh_temporal_sequences.json`` or ``.jsonl``, ``folio.jsonl``,
``musique.jsonl``: JSON lines or one JSON array) and its row parser.

Each file may use the Hub schema or the original release's (see README, "Offline").
Only the standard library is imported at module level; ``datasets`` is imported when
a Hub load or a ``DatasetDict`` is needed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from lrm_tasks.benchmarks import BENCHMARKS
from lrm_tasks.benchmarks.spec import BenchmarkSpec, DataError

__all__ = ["BENCHMARKS", "DATA_DIR_ENV", "DataError", "as_dataset_dict", "load_docs", "local_path", "read_id_list"]

DATA_DIR_ENV = "LRM_DATA_DIR"


def _read_records(path: Path) -> list[tuple[dict[str, Any], str]]:
    """Rows of a JSON lines file, a JSON array, or a BBH ``{"examples": [...]}`` file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc}).") from exc
    stripped = text.lstrip()
    if stripped.startswith("[") or (stripped.startswith("{") and path.suffix == ".json"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}: not valid JSON ({exc}).") from exc
        if isinstance(data, dict):
            data = data.get("examples", data.get("data"))
        if not isinstance(data, list):
            raise DataError(f"{path}: expected a JSON array of records or an object with an 'examples' list.")
        rows = [(r, f"{path} item {i}") for i, r in enumerate(data)]
    else:
        rows = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                rows.append((json.loads(line), f"{path} line {n}"))
            except json.JSONDecodeError as exc:
                raise DataError(f"{path} line {n}: not valid JSON ({exc.msg}).") from exc
    for row, where in rows:
        if not isinstance(row, dict):
            raise DataError(f"{where}: expected a JSON object, got {type(row).__name__}.")
    if not rows:
        raise DataError(f"{path}: contains no records.")
    return rows


def local_path(benchmark: str, data_dir: str | os.PathLike[str]) -> Path:
    """The file for ``benchmark`` in ``data_dir``; a clear error if there is none."""
    b = BENCHMARKS[benchmark]
    folder = Path(data_dir).expanduser()
    for name in b.local_files:
        if (folder / name).is_file():
            return folder / name
    raise DataError(
        f"{DATA_DIR_ENV}={folder} is set but {' or '.join(str(folder / n) for n in b.local_files)} "
        f"does not exist. Put the {benchmark} file there (see the README, 'Offline data'), "
        f"or unset {DATA_DIR_ENV} to load {b.hub_path} from the Hugging Face Hub."
    )


def _hub_rows(b: BenchmarkSpec) -> list[dict[str, Any]]:
    import datasets

    try:
        ds = datasets.load_dataset(b.hub_path, b.hub_name, split=b.hub_split)
    except Exception as exc:
        raise DataError(
            f"Could not load {b.hub_path}"
            f"{'/' + b.hub_name if b.hub_name else ''} (split {b.hub_split}) from the Hub: "
            f"{type(exc).__name__}: {exc}. {b.hub_note} Offline, set {DATA_DIR_ENV} to a folder "
            f"holding {b.local_files[0]}."
        ) from exc
    return [dict(r) for r in ds]


def load_docs(
    benchmark: str,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    ids: Iterable[str] | None = None,
) -> list[dict[str, Any]]:
    """Load ``benchmark`` as canonical documents.

    ``data_dir`` (default ``$LRM_DATA_DIR``) selects local files; without it the Hub is
    used. ``ids`` keeps only the documents whose ``doc_key`` is listed, in file order.
    """
    if benchmark not in BENCHMARKS:
        raise DataError(f"unknown benchmark {benchmark!r}; expected one of {', '.join(BENCHMARKS)}.")
    b = BENCHMARKS[benchmark]
    data_dir = data_dir if data_dir is not None else os.environ.get(DATA_DIR_ENV) or None
    if data_dir:
        path = local_path(benchmark, data_dir)
        rows = _read_records(path)
    else:
        rows = [(r, f"{b.hub_path} row {i}") for i, r in enumerate(_hub_rows(b))]
    docs = [b.to_doc(row, i, where) for i, (row, where) in enumerate(rows)]
    if ids is not None:
        wanted = {str(x) for x in ids}
        docs = [d for d in docs if d["doc_key"] in wanted]
        missing = wanted - {d["doc_key"] for d in docs}
        if missing:
            raise DataError(
                f"{len(missing)} of the {len(wanted)} requested {benchmark} ids are not in the data, "
                f"e.g. {', '.join(sorted(missing)[:3])}."
            )
    return docs


def read_id_list(path: str | os.PathLike[str]) -> list[str]:
    """Ids from a text file (one per line), a JSON array of ids, or records with ``id``."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise DataError(f"id list {p} does not exist; expected a .txt file (one id per line) or JSON/JSON lines.")
    text = p.read_text(encoding="utf-8")
    if p.suffix == ".txt":
        return [s for line in text.splitlines() if (s := line.strip()) and not s.startswith("#")]
    try:
        data = json.loads(text) if text.lstrip().startswith("[") else [json.loads(x) for x in text.splitlines() if x.strip()]
    except json.JSONDecodeError as exc:
        raise DataError(f"{p}: not valid JSON or JSON lines ({exc}).") from exc
    ids = [str(x.get("id", "")) if isinstance(x, dict) else str(x) for x in data]
    if not all(ids):
        raise DataError(f"{p}: every record needs an 'id' field.")
    return ids


def as_dataset_dict(docs: list[dict[str, Any]], split: str = "test"):
    """Wrap documents as the ``datasets.DatasetDict`` lm-eval's ``custom_dataset`` expects."""
    import datasets

    return datasets.DatasetDict({split: datasets.Dataset.from_list(docs)})
