"""Errors the commands catch and print as one clear message; here, apart from torch, so catching them loads nothing.

Each module that raises one imports it from here (clip_model.py, backbones.py); callers may import
either place.
"""

from __future__ import annotations


class ClipWeightsError(RuntimeError):
    """CLIP weights could not be had; the message names the ways out."""


class BackboneWeightsError(RuntimeError):
    """Backbone weights could not be had; the message names the ways out."""


class DetectorWeightsError(RuntimeError):
    """A detector's weights (or the optional package it needs) could not be had; the message names the ways out."""
