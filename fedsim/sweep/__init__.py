"""Sweeps: every combination of a grid of settings × seeds as ordinary runs in one folder with an index."""
