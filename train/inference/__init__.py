"""Inference: a trained checkpoint applied to new videos."""
