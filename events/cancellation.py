"""A person's request to stop an experiment.

Only the `cli` role may append it (shared/auth.py); the coordinator honours it: it decides no further
episode and requests no further job, lets the jobs already requested finish, then completes the
experiment with the cancellation as its reason. It is an event like any other, so a replay shows who
stopped the run, when and why.
"""

from __future__ import annotations

from pydantic import Field

from greenai.events.envelope import EventData
from greenai.events.registry import register


@register
class ExperimentCancelled(EventData):
    """Stop deciding: no new episode, no new job; what runs may finish."""

    TYPE = "experiment.cancelled"
    requested_by: str = Field(min_length=1, max_length=60, description="Who asked (user name or 'dashboard').")
    reason: str = Field(default="", max_length=2000, description="Why, in the person's words (may be empty).")
