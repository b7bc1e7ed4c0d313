"""Reports written from the projections: an experiment's folder of JSON files and its Pareto charts.

The folds in `projections/` stay pure (events in, state out); rendering and writing files live here,
used by the CLI (`greenai run`, `greenai show`/`replay`) after a fold.
"""
