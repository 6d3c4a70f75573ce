"""The package version (one place; percept/__init__ and the model cards read it)."""

__version__ = "0.1.0"
