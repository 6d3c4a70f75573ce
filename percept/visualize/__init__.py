"""Pixel-space optimisation on the shared loss network (Gatys style transfer, and later inversion,
DeepDream, activation maximisation) and the other CNN visualisation techniques."""
