"""Engines: one interface (base.py), two implementations (builtin, renode)."""
