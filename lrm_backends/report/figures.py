"""PNG figures of the report, drawn from :class:`~lrm_backends.report.tables.Tables`.

Each figure is two functions: ``<figure>_data`` (pure, no matplotlib) says what is drawn
(series and their points, axis scales and limits, labels, caption), and ``<figure>``
draws exactly that. Tests check the data; the drawing adds nothing a reader could be
misled by. matplotlib is imported here only, lazily, and used through
``matplotlib.figure.Figure`` (the Agg canvas, no pyplot state), so the report runs
headless and nothing is drawn before it is asked for. Every function takes computed
rows; nothing is recomputed.

Rules every figure keeps: scores on a 0-100 axis; token axes show zero-token responses
(a symlog axis where a log one would drop them) and captions count them; an average of
one task is not drawn beside that task; N:M pruning is a series of its own; a base
model sits at its stored precision; labels are rounded for people.
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
from lrm_backends.report.tables import AVG, CONTEXT, KNOWLEDGE, REASONING, Tables, task_kind, task_title

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
# Which filters' scores the figures show (`lrm report --filter`); "both" draws strict
# solid and flexible dashed (hollow markers, hatched bars).
FILTERS = {"strict": ("strict",), "flexible": ("flexible",), "both": ("strict", "flexible")}
DEFAULT_FILTER = "strict"
FILTER_LINESTYLE = {"strict": "-", "flexible": "--"}
SCORE_LIMITS = (0.0, 100.0)  # percent: a score axis never runs below 0 or above 100
# Knowledge-vs-reasoning bars: the y axis spans at least this many points either side
# of zero, so that zero drops show as a visible zero line rather than a blank plot.
MIN_DROP_SPAN = 5.0
# Below this many points a drop is "no difference" (float noise of equal scores).
ZERO_DROP = 1e-9
# Symlog axis: linear between 0 and this many tokens, log beyond (0 stays on the axis).
SYMLOG_LINTHRESH = 1.0
ZERO_ROOM = 0.4  # tokens left of 0 on a symlog axis, so marks at 0 clear the frame
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]  # one per compression method / series


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


def token_scale(values: list[float | None]) -> str:
    """The scale of a token axis: "log" when the counts span more than LOG_AXIS_RATIO,
    "symlog" when they do and some are zero (a log axis would drop those silently),
    else "linear".

    >>> token_scale([10, 20]), token_scale([10, 5000]), token_scale([0, 10, 5000]), token_scale([])
    ('linear', 'log', 'symlog', 'linear')
    """
    known = [v for v in values if v is not None and not math.isnan(v)]
    positive = [v for v in known if v > 0]
    if positive and max(positive) / min(positive) > LOG_AXIS_RATIO:
        return "symlog" if any(v <= 0 for v in known) else "log"
    return "linear"


def _apply_token_scale(ax: Any, scale: str, axis: str = "x") -> None:
    """Put a token axis on ``scale``, labelled in plain numbers (the default 10^k labels
    go through mathtext, slow and less readable)."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter

    which = ax.xaxis if axis == "x" else ax.yaxis
    setter = ax.set_xscale if axis == "x" else ax.set_yscale
    if scale == "log":
        setter("log")
        which.set_minor_formatter(NullFormatter())
    elif scale == "symlog":
        setter("symlog", linthresh=SYMLOG_LINTHRESH, linscale=0.5)
        which.set_minor_formatter(NullFormatter())
    else:
        which.set_major_locator(MaxNLocator(nbins=6))
    which.set_major_formatter(FuncFormatter(_tokens_label))
    if scale != "log":  # token counts are never negative: start the axis at zero
        lo, hi = (ax.get_xlim() if axis == "x" else ax.get_ylim())
        if lo < 0:
            (ax.set_xlim if axis == "x" else ax.set_ylim)(0, hi)


def _score_axis(ax: Any, label: str, axis: str = "y") -> None:
    """A score axis: 0-100 always; markers at 0 and 100 are not clipped."""
    (ax.set_ylim if axis == "y" else ax.set_xlim)(*SCORE_LIMITS)
    (ax.set_ylabel if axis == "y" else ax.set_xlabel)(label)


def score_label(filters: tuple[str, ...]) -> str:
    """The score axis' title for the filters shown.

    >>> score_label(("strict",)), score_label(("strict", "flexible"))
    ('exact match, strict (%)', 'exact match (%): strict solid, flexible dashed')
    """
    if len(filters) == 1:
        return f"exact match, {filters[0]} (%)"
    return "exact match (%): strict solid, flexible dashed"


def _filters(filt: str) -> tuple[str, ...]:
    if filt not in FILTERS:
        raise ReportError(f"filter {filt!r}: expected one of {', '.join(FILTERS)}")
    return FILTERS[filt]


def _legend_width(labels: list[str], fontsize: float = 8) -> float:
    return _text_width(labels, fontsize) + 0.55  # marker, padding


# ---------------------------------------------------------------- 2. score vs tokens


def score_vs_tokens_data(tables: Tables, task: str, filt: str = DEFAULT_FILTER) -> dict[str, Any]:
    """What the score-vs-tokens scatter of ``task`` shows: a point per model and filter
    (x: mean reasoning tokens; y: exact match in percent, error bar one s.e.)."""
    filters = _filters(filt)
    points = []
    for r in tables.main:
        if r["task"] != task or r.get("mean_reasoning_tokens") is None:
            continue
        for f in filters:
            y = r.get(f"score_{f}")
            if y is None:
                continue
            se = r.get(f"score_{f}_se")
            points.append({"model": r["model"], "filter": f, "x": r["mean_reasoning_tokens"], "y": _pct(y),
                           "yerr": None if se is None else _pct(se)})
    xs = [p["x"] for p in points]
    return {"task": task, "filters": filters, "points": points, "xscale": token_scale(xs),
            "ylim": SCORE_LIMITS, "ylabel": score_label(filters), "xlabel": "mean reasoning tokens",
            "zero_tokens": [p["model"] for p in points if p["x"] == 0 and p["filter"] == filters[0]]}


def _scatter(ax: Any, data: dict[str, Any], colors: dict[str, Any], title: str) -> None:
    for p in data["points"]:
        hollow = p["filter"] == "flexible" and len(data["filters"]) > 1
        ax.errorbar(p["x"], p["y"], yerr=p["yerr"], fmt="o", ms=7, capsize=3, color=colors[p["model"]],
                    mfc="white" if hollow else colors[p["model"]], clip_on=False,
                    label=p["model"] if p["filter"] == data["filters"][0] else None)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(data["xlabel"])
    _score_axis(ax, data["ylabel"] if len(data["filters"]) == 1 else "exact match (%)")
    ax.grid(alpha=0.3)
    _apply_token_scale(ax, data["xscale"])
    if not data["points"]:
        ax.text(0.5, 0.5, "no token counts", ha="center", va="center", transform=ax.transAxes, color="gray")


def _filter_note(filters: tuple[str, ...]) -> str:
    return f"{filters[0]} filter" if len(filters) == 1 else "strict filled, flexible hollow"


def score_vs_tokens(tables: Tables, out: Path, colors: dict[str, Any], task: str,
                    filt: str = DEFAULT_FILTER) -> dict[str, Any]:
    """Score vs mean reasoning tokens on one task: a point per model, error bars one
    standard error."""
    Figure = _figure_class()
    data = score_vs_tokens_data(tables, task, filt)
    labels = list(dict.fromkeys(p["model"] for p in data["points"]))
    legend = _legend_width(labels)
    fig = Figure(figsize=(5.2 + legend, 4.2))
    ax = fig.subplots()
    _scatter(ax, data, colors, f"{task_title(task)} ({task}): score vs reasoning tokens\n"
             f"({_filter_note(data['filters'])})")
    if labels:
        ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    _layout(fig, right=legend + 0.1, top=0.65)
    return {"figure": "score_vs_tokens", "task": task, "filter": filt,
            "path": _save(fig, out / f"score_vs_tokens_{slug(task)}.png")}


def score_vs_tokens_overview(tables: Tables, out: Path, colors: dict[str, Any],
                             filt: str = DEFAULT_FILTER) -> dict[str, Any]:
    """The score-vs-tokens scatters of every task side by side, one legend."""
    Figure = _figure_class()
    n = len(tables.tasks)
    cols = min(3, n)
    rows_n = math.ceil(n / cols)
    legend = _legend_width(list(colors))
    fig = Figure(figsize=(4.3 * cols + legend, 3.3 * rows_n + 0.4))
    axes = fig.subplots(rows_n, cols, squeeze=False)
    for i, task in enumerate(tables.tasks):
        _scatter(axes[i // cols][i % cols], score_vs_tokens_data(tables, task, filt), colors, task_title(task))
    for j in range(n, rows_n * cols):
        axes[j // cols][j % cols].set_visible(False)
    handles = [_dot(colors[label]) for label in colors]
    fig.legend(handles, list(colors), loc="center right", bbox_to_anchor=(1.0, 0.5), fontsize=8, frameon=False)
    fig.suptitle(f"Score vs mean reasoning tokens, per task (error bars: 1 s.e.; {_filter_note(_filters(filt))})")
    _layout(fig, right=legend + 0.1, top=0.75, wspace=0.3, hspace=0.5)
    return {"figure": "score_vs_tokens", "task": None, "filter": filt,
            "path": _save(fig, out / "score_vs_tokens_overview.png")}


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


def length_distributions_data(tables: Tables, task: str) -> dict[str, Any] | None:
    """What the correct-vs-incorrect length box plots of ``task`` show (strict
    correctness, as the Mann-Whitney test): per model both length lists, the tick
    label, and how many responses had zero tokens (kept on a symlog axis, counted in
    the caption)."""
    stats_by = {(r["model"], r["task"]): r for r in tables.length}
    labels = [m["model"] for m in tables.models if (m["model"], task) in tables.distributions]
    if not labels:
        return None
    rows = []
    for label in labels:
        s = stats_by[(label, task)]
        d = tables.distributions[(label, task)]
        p = s["p_value"]
        zeros = sum(1 for side in ("correct", "incorrect") for v in d[side] if v == 0)
        rows.append({"model": label, "correct": d["correct"], "incorrect": d["incorrect"], "zero_tokens": zeros,
                     "tick": f"{label}\n{s['n_correct']} right / {s['n_incorrect']} wrong, "
                             f"{'p n/a' if p is None else 'p=' + _p(p)}"
                             + (f", {zeros} at 0 tokens" if zeros else "")})
    values = [v for r in rows for side in ("correct", "incorrect") for v in r[side]]
    zero = {r["model"]: r["zero_tokens"] for r in rows if r["zero_tokens"]}
    caption = ("zero-token responses: " + ", ".join(f"{m} {n}" for m, n in zero.items())) if zero else ""
    return {"task": task, "models": rows, "xscale": token_scale(values), "zero_tokens": zero,
            "caption": caption, "xlabel": "response length (total tokens)"
            + (" — symlog axis: 0 is on it" if token_scale(values) == "symlog" else "")}


def length_distributions(tables: Tables, out: Path, task: str, filt: str = DEFAULT_FILTER) -> dict[str, Any] | None:
    """Each model's lengths of correct and of incorrect responses on one task as box
    plots, with the Mann-Whitney p-value and the number of responses on each side
    (always by strict correctness, the test's; the title says so)."""
    from matplotlib.patches import Patch

    data = length_distributions_data(tables, task)
    if data is None:
        return None
    Figure = _figure_class()
    rows = list(reversed(data["models"]))
    ticks = [r["tick"] for r in rows]
    left = _text_width(ticks, 8) + 0.25
    fig = Figure(figsize=(5.8 + left, 1.5 + 0.62 * len(rows) + (0.25 if data["caption"] else 0)))
    ax = fig.subplots()
    for side, offset, color in (("correct", 0.19, CORRECT_COLOR), ("incorrect", -0.19, INCORRECT_COLOR)):
        values, pos = [], []
        for i, r in enumerate(rows):
            if r[side]:
                values.append(r[side])
                pos.append(i + offset)
        if values:
            _boxplot(ax, values, pos, color)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(ticks, fontsize=8)
    ax.set_ylim(-0.6, len(rows) - 0.4)
    ax.set_xlabel(data["xlabel"])
    _apply_token_scale(ax, data["xscale"])
    if data["xscale"] != "linear":  # room right of the longest box (a log axis ends at its max)
        ax.set_xlim(ax.get_xlim()[0], ax.get_xlim()[1] * 1.15)
    if data["zero_tokens"]:
        # a box at 0 collapses onto the axis: mark each side's zero-token responses
        # with a diamond and their count, just right of a little room left of 0
        lo, hi = ax.get_xlim()
        ax.set_xlim(-ZERO_ROOM if data["xscale"] == "symlog" else -ZERO_ROOM * hi / 50, hi)
        ax.axvline(0, color="gray", linewidth=0.8, linestyle=":")
        for i, r in enumerate(rows):
            for side, offset, color in (("correct", 0.19, CORRECT_COLOR), ("incorrect", -0.19, INCORRECT_COLOR)):
                n = sum(1 for v in r[side] if v == 0)
                if n:
                    ax.plot([0], [i + offset], marker="D", color=color, markersize=6, clip_on=False)
                    ax.annotate(f"{n} at 0", (0, i + offset), xytext=(6, -3), textcoords="offset points",
                                fontsize=7, color=color)
    ax.grid(axis="x", alpha=0.3)
    ax.legend([Patch(color=CORRECT_COLOR, alpha=0.75), Patch(color=INCORRECT_COLOR, alpha=0.75)],
              ["correct", "incorrect"], fontsize=8, loc="lower right", bbox_to_anchor=(1.0, 1.0),
              ncol=2, frameon=False)
    ax.set_title(f"{task_title(task)}: lengths of correct vs incorrect responses\n"
                 "(strict; p: two-sided Mann-Whitney U)", fontsize=10, loc="left")
    if data["caption"]:
        fig.text(0.01, 0.01, data["caption"], fontsize=8, color="dimgray")
    _layout(fig, left=left, right=0.25, top=0.75, bottom=0.85 if data["caption"] else 0.6)
    return {"figure": "length_correct_vs_incorrect", "task": task, "filter": "strict", "caption": data["caption"],
            "path": _save(fig, out / f"length_correct_vs_incorrect_{slug(task)}.png")}


def _p(p: float) -> str:
    return f"{p:.1e}" if p < 1e-3 else f"{p:.3f}"


# ---------------------------------------------------------------- 4. accuracy by length


def accuracy_by_length_data(tables: Tables, task: str, filt: str = DEFAULT_FILTER) -> dict[str, Any] | None:
    """A line per model and filter: accuracy (percent) in each length quantile at the
    quantile's median length (a mean would be dragged right by one truncated response)."""
    filters = _filters(filt)
    rows = [r for r in tables.quantiles if r["task"] == task]
    if not rows:
        return None
    series = []
    for label in dict.fromkeys(r["model"] for r in rows):
        for f in filters:
            key = "accuracy" if f == "strict" else "accuracy_flexible"
            pts = sorted((r["median_tokens"], _pct(r.get(key))) for r in rows if r["model"] == label)
            if pts:
                series.append({"model": label, "filter": f, "x": [p[0] for p in pts], "y": [p[1] for p in pts]})
    xs = [x for s in series for x in s["x"]]
    zero = sorted({s["model"] for s in series if 0 in s["x"]})
    single = list(dict.fromkeys(s["model"] for s in series if len(s["x"]) == 1))
    notes = ([f"a quantile at 0 tokens: {', '.join(zero)}"] if zero else []) + \
        ([f"all lengths equal, one quantile: {', '.join(single)}"] if single else [])
    return {"task": task, "filters": filters, "series": series, "xscale": token_scale(xs), "ylim": SCORE_LIMITS,
            "ylabel": score_label(filters),
            "xlabel": f"median length in the quantile (total tokens; {tables.quantile_count} quantiles per model)",
            "caption": "; ".join(notes)}


def accuracy_by_length(tables: Tables, out: Path, colors: dict[str, Any], task: str,
                       filt: str = DEFAULT_FILTER) -> dict[str, Any] | None:
    """Accuracy in each length quantile on one task, a line per model, at the median
    length of the quantile."""
    data = accuracy_by_length_data(tables, task, filt)
    if data is None:
        return None
    Figure = _figure_class()
    legend = _legend_width(list(colors))
    fig = Figure(figsize=(5.4 + legend, 4.2))
    ax = fig.subplots()
    for s in data["series"]:
        ax.plot(s["x"], s["y"], marker="o", linestyle=FILTER_LINESTYLE[s["filter"]], color=colors[s["model"]],
                mfc="white" if s["filter"] == "flexible" and len(data["filters"]) > 1 else colors[s["model"]],
                clip_on=False, label=s["model"] if s["filter"] == data["filters"][0] else None)
    _apply_token_scale(ax, data["xscale"])
    ax.set_xlabel(data["xlabel"])
    _score_axis(ax, data["ylabel"])
    ax.grid(alpha=0.3)
    ax.set_title(f"{task_title(task)}: accuracy by response-length quantile", fontsize=10)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    if data["caption"]:
        fig.text(0.01, 0.01, data["caption"], fontsize=8, color="dimgray")
    _layout(fig, right=legend + 0.1)
    return {"figure": "accuracy_by_length", "task": task, "filter": filt, "caption": data["caption"],
            "path": _save(fig, out / f"accuracy_by_length_{slug(task)}.png")}


# ---------------------------------------------------------------- 5. compression curves


def compression_curve_data(tables: Tables, base: str, axis: str, filt: str = DEFAULT_FILTER) -> dict[str, Any]:
    """One base model on one axis. Score series: one per (task, compression series,
    filter); token series: one per (task, compression series). A compression series
    is a method, with its N:M pattern apart (``sparsegpt 2:4``); the base point starts
    every series. The reasoning average is left out when it averages one task (it
    would hide that task's line)."""
    filters = _filters(filt)
    rows = [r for r in tables.curves if r["base"] == base and r["axis"] == axis]
    series_names = [s for s in dict.fromkeys(r.get("series", r["method"]) for r in rows) if s != "none"]
    reasoning = [t for t in tables.tasks if task_kind(t) == REASONING and any(r["task"] == t for r in rows)]
    tasks = [t for t in tables.tasks if any(r["task"] == t for r in rows)]
    if len(reasoning) > 1 and any(r["task"] == AVG for r in rows):
        tasks.append(AVG)
    score, tokens = [], []
    for task in tasks:
        name = "reasoning avg" if task == AVG else task_title(task)
        for si, sname in enumerate(series_names):
            pts = sorted(
                ((r["x"], r) for r in rows
                 if r["task"] == task and r.get("series", r["method"]) in (sname, "none") and r["x"] is not None),
                key=lambda p: p[0],
            )
            if not pts:
                continue
            label = name + (f" ({sname})" if len(series_names) > 1 else "")
            common = {"task": task, "series": sname, "index": si, "label": label, "x": [p[0] for p in pts],
                      "models": [p[1]["model"] for p in pts]}
            for f in filters:
                score.append({**common, "filter": f, "y": [_pct(p[1][f"score_{f}"]) for p in pts]})
            tok = [p[1]["mean_reasoning_tokens"] for p in pts]
            tokens.append({**common, "y": [math.nan if t is None else t for t in tok]})
    base_row = next((r for r in rows if r["method"] == "none"), None)
    precision = base_row.get("precision") if base_row else None
    base_name = next((m["base_name"] for m in tables.models if m["base"] == base), base)
    what = "sparsity" if axis == SPARSITY else "bits per weight"
    base_note = ("base included" + (f": {precision}" if precision and axis == BITS else "")) if base_row else "no base run"
    if len(series_names) == 1:  # one series has no legend suffix: name it in the title
        base_note = f"{series_names[0]}; {base_note}"
    return {"base": base, "axis": axis, "filters": filters, "series_names": series_names, "score": score,
            "tokens": tokens, "ylim": SCORE_LIMITS, "ylabel": score_label(filters),
            "xlabel": "sparsity (fraction of weights zeroed)" if axis == SPARSITY else "bits per weight",
            "invert_x": axis == BITS, "base_precision": precision,
            "title": f"{base_name}: score and tokens vs {what} ({base_note})"}


def compression_curve(tables: Tables, out: Path, base: str, axis: str, filt: str = DEFAULT_FILTER) -> dict[str, Any]:
    """One base model on one axis: score and mean reasoning tokens against sparsity or
    bits per weight; a color per task (the reasoning average in black), a marker (and,
    with one filter, a line style) per compression series."""
    from matplotlib import colormaps

    Figure = _figure_class()
    data = compression_curve_data(tables, base, axis, filt)
    task_cmap = colormaps["Dark2"]
    method_styles = ["-", "-.", ":", (0, (5, 1))]
    task_colors = {t: ("black" if t == AVG else task_cmap(i % task_cmap.N))
                   for i, t in enumerate(dict.fromkeys(s["task"] for s in data["tokens"]))}
    fig = Figure(figsize=(12.0, 4.3))
    ax_s, ax_t = fig.subplots(1, 2)
    both = len(data["filters"]) > 1

    def style(s: dict[str, Any], f: str | None) -> dict[str, Any]:
        color = task_colors[s["task"]]
        linestyle = FILTER_LINESTYLE[f] if both and f else method_styles[s["index"] % len(method_styles)]
        return dict(color=color, linestyle=linestyle, marker=MARKERS[s["index"] % len(MARKERS)], clip_on=False,
                    mfc="white" if f == "flexible" and both else color,
                    linewidth=2.4 if s["task"] == AVG else 1.4)

    for s in data["score"]:
        ax_s.plot(s["x"], s["y"], **style(s, s["filter"]))
    for s in data["tokens"]:
        ax_t.plot(s["x"], s["y"], label=s["label"], **style(s, None if not both else "strict"))
    for ax in (ax_s, ax_t):
        ax.set_xlabel(data["xlabel"])
        ax.grid(alpha=0.3)
        if data["invert_x"]:
            ax.invert_xaxis()  # more compression to the right on both axes
    _score_axis(ax_s, data["ylabel"])
    ax_t.set_ylabel("mean reasoning tokens")
    _apply_token_scale(ax_t, "linear", axis="y")
    _, names = ax_t.get_legend_handles_labels()
    legend = _legend_width(names) + 0.2
    fig.set_size_inches(9.4 + legend, 4.3)
    ax_t.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False)
    fig.suptitle(data["title"])
    _layout(fig, right=legend, top=0.6, wspace=0.28)
    return {"figure": "compression_curve", "base": base, "axis": axis, "filter": filt,
            "path": _save(fig, out / f"compression_{slug(base)}_{axis}.png")}


# ---------------------------------------------------------------- 6. knowledge vs reasoning

_KR_SERIES = ((KNOWLEDGE, "MuSiQue closed-book (knowledge)", "#7b2cbf"),
              (CONTEXT, "MuSiQue with paragraphs", "#3a86ff"),
              (REASONING, "reasoning avg", "#fb8500"))


def knowledge_vs_reasoning_data(tables: Tables, base: str, filt: str = DEFAULT_FILTER) -> dict[str, Any] | None:
    """Bars of the drop from the base in points, per variant, kind and filter; the y
    limits include zero and at least MIN_DROP_SPAN points either side, and when every
    drop is zero the note says "no difference from the base"."""
    filters = _filters(filt)
    rows = [r for r in tables.knowledge if r["base_key"] == base]
    bars = []
    for kind, name, color in _KR_SERIES:
        for f in filters:
            key = f"{kind}_drop" + ("" if f == "strict" else "_flexible")
            if not any(r.get(key) is not None for r in rows):
                continue
            bars.append({"kind": kind, "filter": f, "color": color,
                         "label": name + (f", {f}" if len(filters) > 1 else ""),
                         "y": [_pct(r.get(key)) for r in rows]})
    if not bars:
        return None
    ys = [y for b in bars for y in b["y"] if not math.isnan(y)]
    span = max([MIN_DROP_SPAN, *(abs(y) * 1.15 for y in ys)])
    lo = -span if min(ys, default=0) < 0 or max(ys, default=0) <= ZERO_DROP else -span * 0.1
    hi = span if max(ys, default=0) > 0 or min(ys, default=0) >= -ZERO_DROP else span * 0.1
    names = [r["compression"] for r in rows]
    if len(set(names)) < len(names):
        names = [f"{r['model']}\n{r['compression']}" for r in rows]
    none = all(abs(y) <= ZERO_DROP for y in ys)
    return {"base": base, "filters": filters, "bars": bars, "names": names, "ylim": (lo, hi),
            "note": "no difference from the base" if none else "",
            "title": f"Knowledge vs reasoning: drop from {rows[0]['base']}\n(points, positive = lost; "
                     f"{filters[0] if len(filters) == 1 else 'strict solid, flexible hatched'})"}


def knowledge_vs_reasoning(tables: Tables, out: Path, base: str, filt: str = DEFAULT_FILTER) -> dict[str, Any] | None:
    """One base model's variants: grouped bars of the drop from the base, in points, on
    closed-book MuSiQue (knowledge), MuSiQue with its paragraphs, and the reasoning
    average; zero drops drawn as a mark on the zero line."""
    data = knowledge_vs_reasoning_data(tables, base, filt)
    if data is None:
        return None
    Figure = _figure_class()
    names, bars = data["names"], data["bars"]
    fig = Figure(figsize=(max(6.5, KR_SLOT_INCHES * len(names) + 2.0), 4.6))
    ax = fig.subplots()
    width = 0.8 / len(bars)
    for si, b in enumerate(bars):
        xs = [i - 0.4 + width * (si + 0.5) for i in range(len(names))]
        flexible = b["filter"] == "flexible" and len(data["filters"]) > 1
        ax.bar(xs, b["y"], width=width, color=b["color"], label=b["label"], alpha=0.55 if flexible else 1.0,
               hatch="//" if flexible else None)
        zeros = [x for x, y in zip(xs, b["y"]) if not math.isnan(y) and abs(y) <= ZERO_DROP]
        # a zero-height bar is invisible: mark it on the zero line in its color
        ax.plot(zeros, [0.0] * len(zeros), linestyle="", marker="_", markersize=14, markeredgewidth=3,
                color=b["color"])
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_ylim(*data["ylim"])
    ax.set_xlim(-0.6, len(names) - 0.4)
    ax.set_xticks(range(len(names)))
    long = _text_width(names, 8) > KR_SLOT_INCHES - 0.1  # wider than its slot: slant it
    ax.set_xticklabels(names, fontsize=8, rotation=25 if long else 0, ha="right" if long else "center")
    ax.set_ylabel("drop from base (points of exact match)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, frameon=False)
    if data["note"]:
        ax.text(0.5, 0.72, data["note"], ha="center", va="center", transform=ax.transAxes, fontsize=11,
                color="dimgray")
    ax.set_title(data["title"], fontsize=10)
    _layout(fig, bottom=0.8 + (_text_width(names, 8) * 0.45 if long else 0.0), top=0.6)
    return {"figure": "knowledge_vs_reasoning", "base": base, "filter": filt, "caption": data["note"],
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
    tables, out, colors, filt = _STATE["tables"], _STATE["out"], _STATE["colors"], _STATE["filter"]
    fn = globals()[kind]
    entry = fn(tables, out, colors, *args, filt=filt) if kind in _WITH_COLORS else fn(tables, out, *args, filt=filt)
    if entry is not None:
        entry["path"] = str(entry["path"])
    return entry


def render_all(tables: Tables, out: Path, progress: Callable[[str], None] | None = None,
               jobs: int = 1, filt: str = DEFAULT_FILTER) -> list[dict[str, Any]]:
    """Draw every figure into ``out``; return one entry per file written, in a fixed
    order. ``filt`` (strict | flexible | both) picks the scores drawn. With ``jobs`` > 1
    the figures are drawn by that many forked processes (where the platform forks; it
    pays on idle cores, not on a busy machine)."""
    _filters(filt)  # a bad filter is named before anything is drawn
    _figure_class()  # fail early (no matplotlib), before any file is written
    todo = figure_jobs(tables)
    if progress:
        progress(f"{len(todo)} figures")
    _STATE.update(tables=tables, out=out, colors=model_colors([m["model"] for m in tables.models]), filter=filt)
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
