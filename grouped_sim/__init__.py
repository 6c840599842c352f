"""grouped-sim: simulated customers for sales and telemarketing dialogues.

This package is the shared core (schemas, config, model backends, corpus I/O, metrics). It never
imports `graphs`, `sop_db`, `profiles` or `discriminator`; only `grouped_sim.cli`, the composition
root, wires them together.
"""

__version__ = "0.1.0"
