"""Reporters: turn a run's result into text, JSON and the other output formats."""
