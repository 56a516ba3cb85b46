"""The fast fan-out rig: a Node mock upstream and a Node stream client (bench/README.md, bench.fanout)."""
