"""Red-team gates for data-driven backdoors: trigger injection, distribution shift, label consistency."""

from dataward.redteam._gate import DEFAULTS, Check, RedteamReport, run_gate
from dataward.redteam.api import PREDICATE_REDTEAM, RedteamRecord, model_lineage, redteam, results_for
from dataward.redteam.models import CallableModel, HttpModel, Model, ModelError, OnnxModel, load_model

__all__ = [
    "DEFAULTS",
    "PREDICATE_REDTEAM",
    "CallableModel",
    "Check",
    "HttpModel",
    "Model",
    "ModelError",
    "OnnxModel",
    "RedteamRecord",
    "RedteamReport",
    "load_model",
    "model_lineage",
    "redteam",
    "results_for",
    "run_gate",
]
