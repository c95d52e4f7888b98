"""Policies attach to every product reference between bind and plan (ARCHITECTURE.md §4)."""
