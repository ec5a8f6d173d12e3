"""PNG figures of the report, drawn from :class:`~lrm_backends.report.tables.Tables`.

matplotlib is imported here only, lazily, and used through ``matplotlib.figure.Figure``
(the Agg canvas, no pyplot state), so the report runs headless and nothing is drawn
before it is asked for. Every function takes computed rows; nothing is recomputed.
"""

from __future__ import annotations

import math
import multiprocessing
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lrm_backends.report.compression import BITS, SPARSITY
from lrm_backends.report.loading import ReportError
from lrm_backends.report.tables import AVG, CONTEXT, KNOWLEDGE, REASONING, Tables, task_title

DPI = 100  # sharp enough on screen, small files, fast to write
# zlib level 1: a third of the encoding time of the default 6, files about a fifth larger.
PNG_OPTIONS = {"compress_level": 1}
CORRECT_COLOR, INCORRECT_COLOR = "#2a9d55", "#d1495b"
# Past this ratio between the longest and the shortest lengths a linear axis squeezes
# the short ones into a corner: use a log axis.
LOG_AXIS_RATIO = 20
# Drawing is most of the report's time (about 0.2 s of CPU a figure).
MIN_PARALLEL = 6  # below this many figures a pool costs more than it saves
KR_SLOT_INCHES = 1.45  # width per model in the knowledge-vs-reasoning bars


class MissingMatplotlib(ReportError):
    """matplotlib is not installed (it is the optional ``report`` extra)."""


def _figure_class():
    try:
        import matplotlib
    except ImportError as exc:  # an optional dependency: say how to get it
        raise MissingMatplotlib(
            "the report's figures need matplotlib: pip install 'lrm-bench[report]' "
            "(or pass --no-figures for tables only)"
        ) from exc
    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    return Figure


def slug(text: str) -> str:
    """A file-name-safe form of ``text``.

    >>> slug("musique_ctx_lrm"), slug("org/R1 8B:Q4")
    ('musique_ctx_lrm', 'org_R1_8B_Q4')
    """
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "x"


def model_colors(labels: list[str]) -> dict[str, Any]:
    """One fixed color per model across all figures."""
    from matplotlib import colormaps

    cmap = colormaps["tab10" if len(labels) <= 10 else "tab20"]
    return {label: cmap(i % cmap.N) for i, label in enumerate(labels)}


def _save(fig: Any, path: Path) -> Path:
    # No bbox_inches="tight": it draws every figure twice. Margins are set by _layout.
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, pil_kwargs=PNG_OPTIONS)
    return path


def _text_width(texts: list[str], fontsize: float) -> float:
    """Rough width in inches of the longest line of ``texts`` (DejaVu Sans averages a
    little over half an em per character)."""
    longest = max((len(line) for t in texts for line in str(t).splitlines()), default=0)
    return longest * fontsize * 0.55 / 72


def _layout(fig: Any, *, left: float = 0.75, right: float = 0.2, bottom: float = 0.6, top: float = 0.45,
            wspace: float | None = None, hspace: float | None = None) -> None:
    """Margins in inches (a fixed layout is one draw; tight/constrained layouts cost more)."""
    w, h = fig.get_size_inches()
    fig.subplots_adjust(left=min(left / w, 0.6), right=max(1 - right / w, 0.4), bottom=min(bottom / h, 0.6),
                        top=max(1 - top / h, 0.4), wspace=wspace, hspace=hspace)


def _pct(v: float | None) -> float:
    return math.nan if v is None else 100.0 * v


def _tokens_label(v: float, _pos: Any = None) -> str:
    """Tick label for a token count: 12,000 rather than 12000 or 1.2e4.

    >>> _tokens_label(12000.0), _tokens_label(0.5)
    ('12,000', '0.5')
    """
    return f"{v:,.0f}" if abs(v) >= 1 or v == 0 else f"{v:g}"


def _maybe_log(ax: Any, values: list[float], axis: str = "x") -> None:
    """Token counts on an axis: a log scale when they span more than LOG_AXIS_RATIO,
    labelled in plain numbers either way (the default 10^k labels go through mathtext,
    slow and less readable)."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter

    which = ax.xaxis if axis == "x" else ax.yaxis
    positive = [v for v in values if v is not None and v > 0]
    if positive and max(positive) / min(positive) > LOG_AXIS_RATIO:
        (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
        which.set_minor_formatter(NullFormatter())
    else:
        which.set_major_locator(MaxNLocator(nbins=6))
    which.set_major_formatter(FuncFormatter(_tokens_label))


def _legend_width(labels: list[str], fontsize: float = 8) -> float:
    return _text_width(labels, fontsize) + 0.55  # marker, padding


# ---------------------------------------------------------------- 2. score vs tokens


def _scatter(ax: Any, rows: list[dict], colors: dict[str, Any], title: str) -> None:
    xs = []
    for r in rows:
        x, y = r.get("mean_reasoning_tokens"), r.get("score_strict")
        if x is None or y is None:
            continue
        se = r.get("score_strict_se")
        ax.errorbar(x, _pct(y), yerr=None if se is None else _pct(se), fmt="o", ms=7, capsize=3,
                    color=colors[r["model"]], label=r["model"])
        xs.append(x)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("mean reasoning tokens")
    ax.set_ylabel("exact match, strict (%)")
    ax.grid(alpha=0.3)
    _maybe_log(ax, xs)
    if not xs:
        ax.text(0.5, 0.5, "no token counts", ha="center", va="center", transform=ax.transAxes, color="gray")


def score_vs_tokens(tables: Tables, out: Path, colors: dict[str, Any], task: str) -> dict[str, Any]:
    """Score vs mean reasoning tokens on one task: a point per model, error bars one
    standard error."""
    Figure = _figure_class()
    rows = [r for r in tables.main if r["task"] == task]
    legend = _legend_width([r["model"] for r in rows])
    fig = Figure(figsize=(5.2 + legend, 4.2))
    ax = fig.subplots()
    _scatter(ax, rows, colors, f"{task_title(task)} ({task}): score vs reasoning tokens")
    if any(r.get("mean_reasoning_tokens") is not None for r in rows):
        ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    _layout(fig, right=legend + 0.1)
    return {"figure": "score_vs_tokens", "task": task, "path": _save(fig, out / f"score_vs_tokens_{slug(task)}.png")}


def score_vs_tokens_overview(tables: Tables, out: Path, colors: dict[str, Any]) -> dict[str, Any]:
    """The score-vs-tokens scatters of every task side by side, one legend."""
    Figure = _figure_class()
    n = len(tables.tasks)
    cols = min(3, n)
    rows_n = math.ceil(n / cols)
    legend = _legend_width(list(colors))
    fig = Figure(figsize=(4.3 * cols + legend, 3.3 * rows_n + 0.4))
    axes = fig.subplots(rows_n, cols, squeeze=False)
    for i, task in enumerate(tables.tasks):
        _scatter(axes[i // cols][i % cols], [r for r in tables.main if r["task"] == task], colors, task_title(task))
    for j in range(n, rows_n * cols):
        axes[j // cols][j % cols].set_visible(False)
    handles = [_dot(colors[label]) for label in colors]
    fig.legend(handles, list(colors), loc="center right", bbox_to_anchor=(1.0, 0.5), fontsize=8, frameon=False)
    fig.suptitle("Score vs mean reasoning tokens, per task (error bars: 1 s.e.)")
    _layout(fig, right=legend + 0.1, top=0.75, wspace=0.3, hspace=0.5)
    return {"figure": "score_vs_tokens", "task": None, "path": _save(fig, out / "score_vs_tokens_overview.png")}


def _dot(color: Any) -> Any:
    from matplotlib.lines import Line2D

    return Line2D([], [], marker="o", linestyle="", color=color, markersize=7)


# ---------------------------------------------------------------- 3. correct vs incorrect


def _boxplot(ax: Any, data: list[list[float]], positions: list[float], color: str) -> None:
    kwargs = dict(positions=positions, widths=0.34, patch_artist=True, manage_ticks=False,
                  flierprops={"markersize": 2.5, "alpha": 0.5, "markeredgecolor": color},
                  medianprops={"color": "black"})
    try:
        parts = ax.boxplot(data, orientation="horizontal", **kwargs)
    except TypeError:  # matplotlib < 3.10
        parts = ax.boxplot(data, vert=False, **kwargs)
    for box in parts["boxes"]:
        box.set_facecolor(color)
        box.set_alpha(0.75)


def length_distributions(tables: Tables, out: Path, task: str) -> dict[str, Any] | None:
    """Each model's lengths of correct and of incorrect responses on one task as box
    plots, with the Mann-Whitney p-value and the number of responses on each side."""
    from matplotlib.patches import Patch

    Figure = _figure_class()
    stats_by = {(r["model"], r["task"]): r for r in tables.length}
    labels = [m["model"] for m in tables.models if (m["model"], task) in tables.distributions]
    if not labels:
        return None
    ticks = []
    for label in reversed(labels):
        s = stats_by[(label, task)]
        p = s["p_value"]
        ticks.append(f"{label}\n{s['n_correct']} right / {s['n_incorrect']} wrong, "
                     f"{'p n/a' if p is None else 'p=' + _p(p)}")
    left = _text_width(ticks, 8) + 0.25
    fig = Figure(figsize=(5.8 + left, 1.5 + 0.62 * len(labels)))
    ax = fig.subplots()
    values: list[float] = []
    for side, offset, color in (("correct", 0.19, CORRECT_COLOR), ("incorrect", -0.19, INCORRECT_COLOR)):
        data, pos = [], []
        for i, label in enumerate(reversed(labels)):
            lengths = tables.distributions[(label, task)][side]
            if lengths:
                data.append(lengths)
                pos.append(i + offset)
                values.extend(lengths)
        if data:
            _boxplot(ax, data, pos, color)
    ax.set_yticks(range(len(labels)))
    ax.set_yticklabels(ticks, fontsize=8)
    ax.set_ylim(-0.6, len(labels) - 0.4)
    ax.set_xlabel("response length (total tokens)")
    _maybe_log(ax, values)
    ax.grid(axis="x", alpha=0.3)
    ax.legend([Patch(color=CORRECT_COLOR, alpha=0.75), Patch(color=INCORRECT_COLOR, alpha=0.75)],
              ["correct", "incorrect"], fontsize=8, loc="lower right", bbox_to_anchor=(1.0, 1.0),
              ncol=2, frameon=False)
    ax.set_title(f"{task_title(task)}: lengths of correct vs incorrect responses\n"
                 "(strict; p: two-sided Mann-Whitney U)", fontsize=10, loc="left")
    _layout(fig, left=left, right=0.25, top=0.75)
    return {"figure": "length_correct_vs_incorrect", "task": task,
            "path": _save(fig, out / f"length_correct_vs_incorrect_{slug(task)}.png")}


def _p(p: float) -> str:
    return f"{p:.1e}" if p < 1e-3 else f"{p:.3f}"


# ---------------------------------------------------------------- 4. accuracy by length


def accuracy_by_length(tables: Tables, out: Path, colors: dict[str, Any], task: str) -> dict[str, Any] | None:
    """Accuracy in each length quantile on one task, a line per model, at the median
    length of the quantile."""
    Figure = _figure_class()
    rows = [r for r in tables.quantiles if r["task"] == task]
    if not rows:
        return None
    legend = _legend_width(list(colors))
    fig = Figure(figsize=(5.4 + legend, 4.2))
    ax = fig.subplots()
    xs = []
    for label in colors:
        # the median: one truncated 32k-token response would drag a mean far right
        pts = sorted((r["median_tokens"], _pct(r["accuracy"])) for r in rows if r["model"] == label)
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", color=colors[label], label=label)
            xs.extend(p[0] for p in pts)
    _maybe_log(ax, xs)
    ax.set_xlabel(f"median length in the quantile (total tokens; {tables.quantile_count} quantiles per model)")
    ax.set_ylabel("exact match, strict (%)")
    ax.set_ylim(-3, 103)
    ax.grid(alpha=0.3)
    ax.set_title(f"{task_title(task)}: accuracy by response-length quantile", fontsize=10)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    _layout(fig, right=legend + 0.1)
    return {"figure": "accuracy_by_length", "task": task,
            "path": _save(fig, out / f"accuracy_by_length_{slug(task)}.png")}


# ---------------------------------------------------------------- 5. compression curves


def compression_curve(tables: Tables, out: Path, base: str, axis: str) -> dict[str, Any]:
    """One base model on one axis: score and mean reasoning tokens against sparsity or
    bits per weight; a line per task (the reasoning average in black), a line style per
    method."""
    from matplotlib import colormaps

    Figure = _figure_class()
    task_cmap = colormaps["Dark2"]
    styles = ["-", "--", ":", "-."]
    rows = [r for r in tables.curves if r["base"] == base and r["axis"] == axis]
    fig = Figure(figsize=(12.0, 4.3))
    ax_s, ax_t = fig.subplots(1, 2)
    methods = [m for m in dict.fromkeys(r["method"] for r in rows) if m != "none"]
    tasks = [t for t in tables.tasks if any(r["task"] == t for r in rows)]
    if any(r["task"] == AVG for r in rows):
        tasks.append(AVG)
    for ti, task in enumerate(tasks):
        color = "black" if task == AVG else task_cmap(ti % task_cmap.N)
        name = "reasoning avg" if task == AVG else task_title(task)
        for mi, method in enumerate(methods):
            pts = sorted(
                (r["x"], r) for r in rows
                if r["task"] == task and r["method"] in (method, "none") and r["x"] is not None
            )
            if not pts:
                continue
            xs = [p[0] for p in pts]
            style = dict(color=color, linestyle=styles[mi % len(styles)], marker="o",
                         linewidth=2.4 if task == AVG else 1.4,
                         label=name + (f" ({method})" if len(methods) > 1 else ""))
            ax_s.plot(xs, [_pct(p[1]["score_strict"]) for p in pts], **style)
            tok = [p[1]["mean_reasoning_tokens"] for p in pts]
            ax_t.plot(xs, [math.nan if t is None else t for t in tok], **style)
    xlabel = "sparsity (fraction of weights zeroed)" if axis == SPARSITY else "bits per weight"
    for ax in (ax_s, ax_t):
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
        if axis == BITS:
            ax.invert_xaxis()  # more compression to the right on both axes
    ax_s.set_ylabel("exact match, strict (%)")
    ax_t.set_ylabel("mean reasoning tokens")
    _maybe_log(ax_t, [], axis="y")
    handles, names = ax_t.get_legend_handles_labels()
    legend = _legend_width(names) + 0.2
    fig.set_size_inches(9.4 + legend, 4.3)
    ax_t.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False)
    base_name = next((m["base_name"] for m in tables.models if m["base"] == base), base)
    fig.suptitle(f"{base_name}: score and tokens vs {'sparsity' if axis == SPARSITY else 'bits per weight'}"
                 " (uncompressed base included)")
    _layout(fig, right=legend, top=0.6, wspace=0.28)
    return {"figure": "compression_curve", "base": base, "axis": axis,
            "path": _save(fig, out / f"compression_{slug(base)}_{axis}.png")}


# ---------------------------------------------------------------- 6. knowledge vs reasoning


def knowledge_vs_reasoning(tables: Tables, out: Path, base: str) -> dict[str, Any] | None:
    """One base model's variants: grouped bars of the drop from the base, in points, on
    closed-book MuSiQue (knowledge), MuSiQue with its paragraphs, and the reasoning
    average."""
    Figure = _figure_class()
    series = ((KNOWLEDGE, "MuSiQue closed-book (knowledge)", "#7b2cbf"),
              (CONTEXT, "MuSiQue with paragraphs", "#3a86ff"),
              (REASONING, "reasoning avg", "#fb8500"))
    rows = [r for r in tables.knowledge if r["base_key"] == base]
    present = [s for s in series if any(r.get(f"{s[0]}_drop") is not None for r in rows)]
    if not present:
        return None
    fig = Figure(figsize=(max(6.5, KR_SLOT_INCHES * len(rows) + 2.0), 4.6))
    ax = fig.subplots()
    width = 0.8 / len(present)
    for si, (kind, name, color) in enumerate(present):
        xs = [i - 0.4 + width * (si + 0.5) for i in range(len(rows))]
        ys = [_pct(r.get(f"{kind}_drop")) for r in rows]
        ax.bar(xs, ys, width=width, color=color, label=name)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(rows)))
    # the base is in the title: name each variant by its compression, unless two share one
    names = [r["compression"] for r in rows]
    if len(set(names)) < len(names):
        names = [f"{r['model']}\n{r['compression']}" for r in rows]
    long = _text_width(names, 8) > KR_SLOT_INCHES - 0.1  # wider than its slot: slant it
    ax.set_xticklabels(names, fontsize=8, rotation=25 if long else 0, ha="right" if long else "center")
    ax.set_ylabel("drop from base (points of exact match)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, frameon=False)
    ax.set_title(f"Knowledge vs reasoning: drop from {rows[0]['base']} (positive = lost)", fontsize=10)
    _layout(fig, bottom=0.8 + (_text_width(names, 8) * 0.45 if long else 0.0), top=0.4)
    return {"figure": "knowledge_vs_reasoning", "base": base,
            "path": _save(fig, out / f"knowledge_vs_reasoning_{slug(base)}.png")}


def figure_jobs(tables: Tables) -> list[tuple[str, tuple]]:
    """Every figure the tables call for, as (kind, arguments): one job per file."""
    jobs: list[tuple[str, tuple]] = [("score_vs_tokens", (t,)) for t in tables.tasks]
    if tables.tasks:
        jobs.append(("score_vs_tokens_overview", ()))
    jobs += [("length_distributions", (t,)) for t in tables.tasks if any(k[1] == t for k in tables.distributions)]
    jobs += [("accuracy_by_length", (t,)) for t in tables.tasks if any(r["task"] == t for r in tables.quantiles)]
    jobs += [("compression_curve", key) for key in dict.fromkeys((r["base"], r["axis"]) for r in tables.curves)]
    jobs += [("knowledge_vs_reasoning", (b,)) for b in dict.fromkeys(r["base_key"] for r in tables.knowledge)]
    return jobs


_WITH_COLORS = {"score_vs_tokens", "score_vs_tokens_overview", "accuracy_by_length"}
_STATE: dict[str, Any] = {}  # what forked workers draw from


def _draw(job: tuple[str, tuple]) -> dict[str, Any] | None:
    kind, args = job
    tables, out, colors = _STATE["tables"], _STATE["out"], _STATE["colors"]
    fn = globals()[kind]
    entry = fn(tables, out, colors, *args) if kind in _WITH_COLORS else fn(tables, out, *args)
    if entry is not None:
        entry["path"] = str(entry["path"])
    return entry


def render_all(tables: Tables, out: Path, progress: Callable[[str], None] | None = None,
               jobs: int = 1) -> list[dict[str, Any]]:
    """Draw every figure into ``out``; return one entry per file written, in a fixed
    order. With ``jobs`` > 1 the figures are drawn by that many forked processes (where
    the platform forks; it pays on idle cores, not on a busy machine)."""
    _figure_class()  # fail early (no matplotlib), before any file is written
    todo = figure_jobs(tables)
    if progress:
        progress(f"{len(todo)} figures")
    _STATE.update(tables=tables, out=out, colors=model_colors([m["model"] for m in tables.models]))
    try:
        if jobs > 1 and len(todo) >= MIN_PARALLEL and "fork" in multiprocessing.get_all_start_methods():
            with multiprocessing.get_context("fork").Pool(min(jobs, len(todo))) as pool:
                # interleave so each worker gets a mix of cheap and costly figures
                made = pool.map(_draw, todo, chunksize=1)
        else:
            made = [_draw(job) for job in todo]
    finally:
        _STATE.clear()
    return [{**m, "path": Path(m["path"])} for m in made if m is not None]
