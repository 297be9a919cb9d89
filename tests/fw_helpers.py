"""Skipping a test, with the reason, while a firmware image it runs is not built."""
from __future__ import annotations

from pathlib import Path

import pytest

BUILD = Path(__file__).resolve().parent.parent / "build"


def require_images(*names: str) -> None:
    """``names`` relative to build/ (``stm32/fixed.elf``); skip naming every missing one."""
    missing = [n for n in names if not (BUILD / n).is_file()]
    if missing:
        pytest.skip("firmware image(s) not built: " + ", ".join(missing) + " (run `make firmware`)")
