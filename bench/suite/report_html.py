"""The self-contained HTML report: the Markdown report's tables as HTML and the plots, drawn with matplotlib
(Agg backend) and embedded as base64 PNG, so that the one file can be mailed or committed and opens anywhere.

Plots (each only when its lane ran): latency CDFs at concurrency 1, TTFT and inter-token gap histograms, req/s
and p99 against concurrency, frames/s (of ideal) and TTFT p99 against open streams, and the targets' memory
against open streams. CDFs and histograms are drawn from the quantile sketch the JSON keeps
(bench.suite.stats.sketch): every point stands for the same share of the samples.
"""

from __future__ import annotations

import base64
import html
import io
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from bench.suite import report_md
from bench.suite.stats import cdf


def _png(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _series(lane: dict[str, Any], key: str) -> dict[str, list[float]]:
    return {name: row[key] for name, row in lane.get("results", {}).items() if row.get(key)}


def latency_cdf(doc: dict[str, Any]) -> Figure | None:
    lane = doc["lanes"].get("latency")
    series = _series(lane, "total_sketch") if lane else {}
    if not series:
        return None
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, values in series.items():
        xs, ys = cdf(values)
        ax.step(xs, ys, where="post", label=name)
    ax.set(xlabel="latency at concurrency 1 (ms)", ylabel="fraction of requests", title="Latency CDF, c=1")
    ax.set_xscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    return fig


def histogram(doc: dict[str, Any], key: str, title: str, xlabel: str) -> Figure | None:
    lane = doc["lanes"].get("stream")
    series = _series(lane, f"{key}_sketch") if lane else {}
    if not series:
        return None
    fig, ax = plt.subplots(figsize=(7, 4))
    low = min(min(v) for v in series.values())
    # The x axis stops at the highest p99.5 of the series, so that a few outliers do not squeeze the body flat.
    high = max(v[min(len(v) - 1, int(0.995 * len(v)))] for v in series.values())
    bins = 60 if high > low else 1
    for name, values in series.items():
        ax.hist(values, bins=bins, range=(low, high), histtype="step", linewidth=1.5, label=name, density=True)
    ax.set(xlabel=f"{xlabel}, up to p99.5", ylabel="density", title=title)
    ax.grid(alpha=0.3)
    ax.legend()
    return fig


def sweep(doc: dict[str, Any]) -> Figure | None:
    lane = doc["lanes"].get("sweep")
    if not lane or not lane.get("results"):
        return None
    fig, (rps, p99) = plt.subplots(1, 2, figsize=(11, 4))
    for name, levels in lane["results"].items():
        xs = sorted(int(level) for level in levels)
        rps.plot(xs, [levels[str(x)]["rps"] for x in xs], marker="o", label=name)
        p99.plot(xs, [levels[str(x)]["latency"].get("p99") for x in xs], marker="o", label=name)
    p99.set_yscale("log")
    for ax, ylabel in ((rps, "requests per second"), (p99, "latency p99 (ms)")):
        ax.set_xscale("log", base=2)
        ax.set(xlabel="concurrent connections", ylabel=ylabel)
        ax.grid(alpha=0.3)
        ax.legend()
    rps.set_title("Throughput against concurrency")
    p99.set_title("p99 against concurrency")
    return fig


def fanout(doc: dict[str, Any]) -> Figure | None:
    lane = doc["lanes"].get("fanout")
    if not lane or not any(lane.get("results", {}).values()):
        return None
    fig, (rate, ttft) = plt.subplots(1, 2, figsize=(11, 4))
    for name, levels in lane["results"].items():
        xs = sorted(int(level) for level in levels)
        if not xs:
            continue
        rate.plot(xs, [levels[str(x)]["frames_per_s"] for x in xs], marker="o", label=name)
        ttft.plot(xs, [levels[str(x)]["ttft_p99_ms"] for x in xs], marker="o", label=name)
    ttft.set_yscale("log")
    for ax, ylabel in ((rate, "frames delivered per second"), (ttft, "time to first frame p99 (ms)")):
        ax.set_xscale("log", base=2)
        ax.set(xlabel="concurrent streams", ylabel=ylabel)
        ax.grid(alpha=0.3)
        ax.legend()
    rate.set_title("Frames/s against open streams")
    ttft.set_title("TTFT p99 against open streams")
    return fig


def memory(doc: dict[str, Any]) -> Figure | None:
    lane = doc["lanes"].get("fanout")
    if not lane or not any(lane.get("results", {}).values()):
        return None
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, levels in lane["results"].items():
        xs = sorted(int(level) for level in levels)
        if not xs:
            continue
        ax.plot(
            xs, [levels[str(x)]["rss_peak_mib"] - levels[str(x)]["rss_before_mib"] for x in xs], marker="o", label=name
        )
    ax.set_xscale("log", base=2)
    ax.set(
        xlabel="concurrent streams", ylabel="RSS growth, peak over before (MiB)", title="Memory against open streams"
    )
    ax.grid(alpha=0.3)
    ax.legend()
    return fig


def plots(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """(title, base64 PNG) of every plot the document has data for."""
    made = [
        ("Latency CDF at concurrency 1", latency_cdf(doc)),
        ("Time to first token", histogram(doc, "ttft", "TTFT histogram, c=1", "time to first token (ms)")),
        ("Inter-token gaps", histogram(doc, "gaps", "Inter-token gap histogram, c=1", "gap between tokens (ms)")),
        ("Concurrency sweep", sweep(doc)),
        ("Fan-out", fanout(doc)),
        ("Memory against open streams", memory(doc)),
    ]
    return [(title, _png(fig)) for title, fig in made if fig is not None]


def _table_html(markdown_table: str) -> str:
    lines = [line for line in markdown_table.splitlines() if line.startswith("|")]
    if len(lines) < 2:
        return ""
    cells = [[html.escape(c.strip()) for c in line.strip("|").split("|")] for line in lines]
    head = "".join(f"<th>{c}</th>" for c in cells[0])
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in cells[2:])
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1150px; margin: 2em auto; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f3f3f3; }
.flag { color: #a40000; }
img { max-width: 100%; }
"""


def render(doc: dict[str, Any]) -> str:
    """The whole HTML page of the run's document."""
    md = report_md.markdown(doc)
    title = html.escape(md.splitlines()[0].lstrip("# "))
    intro = [line for line in md.splitlines()[1:8] if line and not line.startswith("|")]
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title><style>{_STYLE}</style></head>"]
    parts.append(f"<body><h1>{title}</h1>")
    parts += [f"<p>{html.escape(line)}</p>" for line in intro]
    parts.append("<h2>Summary</h2>" + _table_html(report_md.table(doc)))
    conv = report_md.convert_table(doc)
    if conv:
        parts.append("<h2>Conversions</h2>" + _table_html(conv))
    parts.append("<h2>Plots</h2>")
    for name, png in plots(doc):
        parts.append(f"<h3>{html.escape(name)}</h3><img alt='{html.escape(name)}' src='data:image/png;base64,{png}'>")
    parts.append("<h2>Targets as configured</h2><ul>")
    parts += [f"<li>{html.escape(line[2:])}</li>" for line in report_md.configured_lines(doc)]
    parts.append("</ul><h2>Bottleneck and noise flags</h2><ul>")
    flagged = [f for lane in doc["lanes"].values() for f in lane.get("flags", [])]
    parts += [f"<li class='flag'>{html.escape(f)}</li>" for f in flagged] or ["<li>none</li>"]
    parts.append("</ul></body></html>")
    return "\n".join(parts)
