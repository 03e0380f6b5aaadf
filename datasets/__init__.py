"""Dataset cards (``<name>.yaml``), shipped with gantk as package data."""
