"""Robot Framework front end: ``Library    duohil.robot.DuoHil`` (keywords as sentences over
duohil.duo, the same API the pytest plugin uses)."""
from .DuoHil import DuoHil

__all__ = ["DuoHil"]
