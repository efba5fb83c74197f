"""The detector registry: an explicit table of the built-in detectors (:class:`dataward.plugins.Registry`).

Importing a detector module registers nothing; :func:`register` adds a third-party detector (and, on a
built-in class, only checks that the table names it).
"""

from __future__ import annotations

from dataward.detect.interface import DetectionError, Detector, Modality
from dataward.plugins import Registry

__all__ = ["BUILTIN", "REGISTRY", "for_modality", "get", "load_all", "names", "register"]

#: the detectors shipped with dataward: name -> "module:Class" (the ensemble's order)
BUILTIN = {
    "label_issues": "dataward.detect.labels:LabelIssues",
    "patch_triggers": "dataward.detect.patches:PatchTriggers",
    "tabular_shortcuts": "dataward.detect.shortcuts:TabularShortcuts",
    "knn_consistency": "dataward.detect.neighbours:KnnConsistency",
    "class_outliers": "dataward.detect.neighbours:ClassOutliers",
    "near_duplicates": "dataward.detect.duplicates:NearDuplicates",
    "spectral_signatures": "dataward.detect.spectral:SpectralSignatures",
    "activation_clustering": "dataward.detect.activation_clustering:ActivationClustering",
    "text_triggers": "dataward.detect.text_triggers:TextTriggerDetector",
    "instruction": "dataward.detect.instruction:InstructionBackdoorDetector",
    "text_combos": "dataward.detect.text_combos:TextComboTriggers",
    "feature_interactions": "dataward.detect.interactions:FeatureInteractions",
    "feature_residuals": "dataward.detect.residuals:FeatureResiduals",
}

#: the one registry of detectors
REGISTRY: Registry[Detector] = Registry("detector", Detector, BUILTIN, error=DetectionError)
#: its lookups (:class:`dataward.plugins.Registry`'s own methods)
register, get, names, load_all = REGISTRY.register, REGISTRY.get, REGISTRY.sorted_names, REGISTRY.classes


def for_modality(modality: Modality) -> list[type[Detector]]:
    """Registered detectors that support ``modality``, in name order."""
    return [cls for _, cls in sorted(REGISTRY.items()) if modality in cls.modalities]
