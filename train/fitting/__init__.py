"""Fitting one model: features from the store, splits, losses, the training loop, checkpoints and the head blend."""
