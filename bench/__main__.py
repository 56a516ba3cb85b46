"""``python -m bench``: the benchmark suite (bench/suite/cli.py), or the older benchmark (bench/run.py) when asked
for with ``legacy`` or given one of its own flags."""

import sys

from bench.suite.route import main

sys.exit(main(sys.argv[1:]))
