"""Forward CAO plugin hook events to the cao-events sidecar (standard library only)."""

__version__ = "0.1.0"
