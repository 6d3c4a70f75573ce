"""Running trained networks: the shipped-model registry and the stylize API (no training code needed)."""
