"""Synthetic data with verifiable provenance.

A synthetic batch carries a signed *generation statement* (in-toto, predicate
:data:`GENERATION_PREDICATE`): the generator's code digest, model artifact digests, seed, parameters,
library versions, the dataset versions it was conditioned on, and the output's Merkle root. Anyone can
re-run the generator and compare Merkle roots (:func:`regenerate`): provenance is proven, not labelled.
:func:`coverage` measures what the synthetic data covers of a real reference, and whether it copies it.
"""

from dataward.lifecycle import PREDICATE_GENERATION as GENERATION_PREDICATE
from dataward.synthetic._coverage import CoverageReport, coverage
from dataward.synthetic._generation import (
    GenerationStatement,
    GeneratorSpec,
    RegenerationResult,
)
from dataward.synthetic.api import ConditioningInput, VersionReader, regenerate, synthesize

__all__ = [
    "GENERATION_PREDICATE",
    "ConditioningInput",
    "CoverageReport",
    "GenerationStatement",
    "GeneratorSpec",
    "RegenerationResult",
    "VersionReader",
    "coverage",
    "regenerate",
    "synthesize",
]
