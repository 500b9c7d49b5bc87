"""Synthetic labelled documents for demos and tests."""
