"""Fitting network weights: the image-folder data pipeline, training loops, checkpoints and logging."""
