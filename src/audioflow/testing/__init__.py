"""Helpers for testing audioflow and code built on it (media generators, ...)."""
