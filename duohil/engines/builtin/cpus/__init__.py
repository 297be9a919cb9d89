"""The CPU cores: the common slice/time glue (cpu.py) and one room per architecture with its
interrupt controllers."""
