"""The `grouped-sim` command line: the composition root, the one place that wires every package together."""
