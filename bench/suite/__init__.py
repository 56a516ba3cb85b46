"""The streaming-latency benchmark suite (issue 15): lanes over any list of targets, interleaved in rounds, with
bottleneck flags, a Markdown table, a self-contained HTML report with plots and the raw JSON. ``python -m bench``
runs it (bench/suite/cli.py); bench/README.md documents the lanes, options and outputs."""
