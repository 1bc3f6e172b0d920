"""Weakly supervised segmentation on top of :mod:`wsol` heatmaps (pseudo masks, second stage)."""
