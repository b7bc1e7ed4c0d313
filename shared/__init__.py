"""Code every agent may use: bus, event store, configuration, logging, model I/O.

Agents never import each other; whatever two agents both need lives here.
"""
