"""Evaluation metrics shared by plugins."""

from gantk.metrics.fid import FIDScorer, frechet_distance, load_inception

__all__ = ["FIDScorer", "frechet_distance", "load_inception"]
