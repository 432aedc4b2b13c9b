"""jobaudit: a static analyzer for background jobs."""

__version__ = "0.1.0"
