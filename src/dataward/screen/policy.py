"""Screening policy: the switches that decide how severe a finding is and what blocks approval.

A policy is a plain mapping (YAML or JSON file, or defaults); ``dataward check --policy FILE`` reads it.
Every switch has a safe default; unknown keys are refused so that a typo never silently weakens a rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from dataward.screen.interface import ScreenError, Severity

#: licences accepted without review by default (SPDX ids; permissive and public-domain data licences)
DEFAULT_ALLOWED_LICENCES = (
    "0BSD",
    "Apache-2.0",
    "BSD-2-Clause",
    "BSD-3-Clause",
    "CC-BY-4.0",
    "CC0-1.0",
    "CDLA-Permissive-1.0",
    "CDLA-Permissive-2.0",
    "ISC",
    "MIT",
    "ODC-By-1.0",
    "PDDL-1.0",
    "Unlicense",
)


@dataclass(frozen=True)
class ScreenPolicy:
    """Thresholds and switches of the screening checks; every field
    has a working default and is documented where it is declared.
    """

    #: "block": PII findings are high (block approval at the default --fail-on high); "warn": low
    pii: str = "block"
    #: PII kinds ignored entirely (e.g. ("ip_address",) for server logs)
    pii_ignore: tuple[str, ...] = ()
    #: "block": a missing licence is high; "warn": medium
    licence_missing: str = "block"
    #: SPDX ids accepted; an expression passes when every licence symbol in it is allowed
    allowed_licences: tuple[str, ...] = DEFAULT_ALLOWED_LICENCES
    #: a never-seen value is reported when it covers at least this share of the batch ...
    new_value_min_share: float = 0.001
    #: ... and at least this many records
    new_value_min_records: int = 5
    #: drift: p-value below which a test counts, and effect sizes at which a column is called drifted
    drift_p_value: float = 1e-3
    drift_psi: float = 0.1
    drift_wasserstein: float = 0.1
    drift_js: float = 0.1
    drift_ks: float = 0.1
    #: label shift: total-variation distance between label distributions that is reported
    label_shift_tvd: float = 0.01
    #: group bias: change of a group's label share (absolute) that is reported
    group_bias_delta: float = 0.05
    #: tail mass / tight cluster: excess share of the batch that is reported
    cluster_min_share: float = 0.002
    #: missing rate change (absolute) that is reported
    missing_delta: float = 0.02
    #: exact/near duplicate clusters of at least this many records are reported
    duplicate_min_cluster: int = 10
    #: Jaccard similarity for text near duplicates; Hamming distance (of 64 bits) for image pHash
    near_duplicate_jaccard: float = 0.8
    image_hamming: int = 6
    #: robust outliers: share of records reported at most, and the robust distance quantile used
    outlier_max_share: float = 0.01
    #: severity of an intel hit
    intel_severity: str = "critical"
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def pii_severity(self) -> Severity:
        """Severity of a PII finding: HIGH when the policy blocks on PII, else LOW."""
        return Severity.HIGH if self.pii == "block" else Severity.LOW

    @property
    def licence_missing_severity(self) -> Severity:
        """Severity of a missing licence: HIGH when the policy blocks on it, else MEDIUM."""
        return Severity.HIGH if self.licence_missing == "block" else Severity.MEDIUM

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, where: str = "policy") -> ScreenPolicy:
        """Policy from a mapping of field names to values (missing ones keep their default); raises
        :class:`ScreenError` naming ``where`` on an unknown key, a wrong type or a value out of its allowed set.
        """
        known = {f.name: f for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key not in known or key == "extra":
                raise ScreenError(
                    f"{where}: unknown screening policy key {key!r}",
                    advice=f"Known keys: {', '.join(sorted(k for k in known if k != 'extra'))}.",
                )
            default = getattr(cls(), key)
            if isinstance(default, tuple):
                if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
                    raise ScreenError(f"{where}: {key} must be a list of strings")
                value = tuple(value)
            elif isinstance(default, (bool, str)):
                if not isinstance(value, type(default)):
                    raise ScreenError(f"{where}: {key} must be a {type(default).__name__}")
            elif isinstance(default, int | float):
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise ScreenError(f"{where}: {key} must be a number")
                value = type(default)(value)
            kwargs[key] = value
        policy = replace(cls(), **kwargs)
        for key, allowed in (("pii", ("block", "warn")), ("licence_missing", ("block", "warn"))):
            if getattr(policy, key) not in allowed:
                raise ScreenError(f"{where}: {key} must be one of {', '.join(allowed)}")
        Severity.parse(policy.intel_severity)
        return policy

    @classmethod
    def load(cls, path: str | Path) -> ScreenPolicy:
        """Policy from a YAML file, either the mapping itself or under a ``screening`` key;
        raises :class:`ScreenError` if the file cannot be read or is not a valid policy.
        """
        p = Path(path)
        try:
            data = yaml.safe_load(p.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise ScreenError(f"cannot read screening policy {p}: {exc}".splitlines()[0]) from None
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise ScreenError(f"screening policy {p} is not a mapping")
        screening = data.get("screening", data)
        if not isinstance(screening, Mapping):
            raise ScreenError(f"screening policy {p}: 'screening' is not a mapping")
        return cls.from_mapping(screening, where=str(p))
