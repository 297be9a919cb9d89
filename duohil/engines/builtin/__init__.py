"""The builtin engine: unicorn CPUs, Python SoC models, deterministic virtual time."""
