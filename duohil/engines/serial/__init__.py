"""The ``serial`` engine: hardware in the loop with a real STM32 board (engine.py)."""
