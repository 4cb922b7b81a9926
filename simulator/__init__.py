"""Synthetic city, trucks and phones, fault injection, load driver.

For now only the small loop publisher of `sanitrack demo`.
"""

from simulator.loops import HA_DONG, LoopTruck, drive, register_trucks

__all__ = ["HA_DONG", "LoopTruck", "drive", "register_trucks"]
