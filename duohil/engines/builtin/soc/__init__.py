"""Peripheral models, one room per SoC."""
