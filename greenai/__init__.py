"""GreenAI: agentic, event-sourced compression of large language models.

The repository keeps `events/`, `projections/`, `services/`, `shared/` and `cli/` at its top level;
installed, they are the subpackages of this namespace (see pyproject.toml).
"""

__version__ = "0.1.0"
