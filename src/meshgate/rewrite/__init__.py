"""Normalise a secured query before planning: qualification, then an ordered list of rules."""
