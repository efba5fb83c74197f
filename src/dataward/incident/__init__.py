"""Incident response: trace a model's misbehaviour back to records, batches and sources; remediate."""

from dataward.incident._trace import TraceResult, trace
from dataward.incident.api import (
    PREDICATE_INCIDENT,
    Incident,
    Resolution,
    get_incident,
    list_incidents,
    open_incident,
    resolve_incident,
    story,
)

__all__ = [
    "PREDICATE_INCIDENT",
    "Incident",
    "Resolution",
    "TraceResult",
    "get_incident",
    "list_incidents",
    "open_incident",
    "resolve_incident",
    "story",
    "trace",
]
