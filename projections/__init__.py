"""Projections: pure folds over events. No I/O here; the same events always give the same state."""
