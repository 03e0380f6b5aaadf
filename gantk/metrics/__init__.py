"""Evaluation metrics shared by plugins."""

from gantk.metrics.fid import DistributionScores, FeatureSpace, distances
from gantk.metrics.inception import load_fid_inception
from gantk.metrics.samples import sample_metrics

__all__ = ["DistributionScores", "FeatureSpace", "distances", "load_fid_inception", "sample_metrics"]
