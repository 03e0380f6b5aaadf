"""gantk's built-in plugins, one folder each; installed as ``gantk.plugins`` and registered as entry points."""
