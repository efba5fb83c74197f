"""The generation statement: what a synthetic batch claims about how it was made (pure: no I/O)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dataward.errors import InputError


@dataclass(frozen=True)
class GeneratorSpec:
    """A generator named as ``MODULE:FUNCTION``, pinned by the SHA-256 of its module's source."""

    module: str
    function: str
    code_sha256: str

    @classmethod
    def parse(cls, text: str, code_sha256: str = "") -> GeneratorSpec:
        module, sep, function = text.partition(":")
        if not sep or not module or not function.isidentifier():
            raise InputError(
                f"generator {text!r} is not MODULE:FUNCTION", advice="For example: --generator mygen:make_rows"
            )
        return cls(module, function, code_sha256)

    @property
    def ref(self) -> str:
        return f"{self.module}:{self.function}"


@dataclass(frozen=True)
class GenerationStatement:
    """Everything needed to regenerate a synthetic batch bit for bit, and the root it must give."""

    generator: GeneratorSpec
    seed: int
    params: Mapping[str, str]
    artifacts: Mapping[str, str]  # model artifact name -> SHA-256
    inputs: Mapping[str, str]  # DATASET@N -> the version's Merkle root
    libraries: Mapping[str, str]  # distribution name -> version, as the generator ran
    output_name: str
    output_merkle_root: str
    record_count: int
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_predicate(self) -> dict[str, Any]:
        return {
            "generator": {
                "module": self.generator.module,
                "function": self.generator.function,
                "code_sha256": self.generator.code_sha256,
            },
            "seed": self.seed,
            "parameters": dict(sorted(self.params.items())),
            "artifacts": dict(sorted(self.artifacts.items())),
            "conditioned_on": dict(sorted(self.inputs.items())),
            "libraries": dict(sorted(self.libraries.items())),
            "output": {"name": self.output_name, "merkle_root": self.output_merkle_root, "records": self.record_count},
        }

    @classmethod
    def from_predicate(cls, pred: Any) -> GenerationStatement:
        """Parse a predicate; a malformed one is an :class:`InputError`, never a KeyError or TypeError."""
        try:
            g, out = pred["generator"], pred["output"]
            stmt = cls(
                GeneratorSpec(str(g["module"]), str(g["function"]), str(g["code_sha256"])),
                int(pred["seed"]),
                {str(k): str(v) for k, v in dict(pred["parameters"]).items()},
                {str(k): str(v) for k, v in dict(pred["artifacts"]).items()},
                {str(k): str(v) for k, v in dict(pred["conditioned_on"]).items()},
                {str(k): str(v) for k, v in dict(pred["libraries"]).items()},
                str(out["name"]),
                str(out["merkle_root"]),
                int(out["records"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"generation statement is malformed: {exc!r}") from None
        return stmt


@dataclass(frozen=True)
class RegenerationResult:
    """The outcome of re-running a generator: equal roots, or the first difference named."""

    batch: str
    ok: bool
    expected_root: str
    regenerated_root: str | None
    problems: tuple[str, ...] = ()
    first_difference: int | None = None  # record number (0-based) of the first differing record

    def to_json(self) -> dict[str, Any]:
        return {
            "batch": self.batch,
            "ok": self.ok,
            "expected_root": self.expected_root,
            "regenerated_root": self.regenerated_root,
            "problems": list(self.problems),
            "first_difference": self.first_difference,
        }


def first_difference(expected: bytes, got: bytes) -> int | None:
    """Index of the first differing 32-byte leaf of two concatenated leaf lists (None when equal)."""
    n_e, n_g = len(expected) // 32, len(got) // 32
    for i in range(min(n_e, n_g)):
        if expected[32 * i : 32 * i + 32] != got[32 * i : 32 * i + 32]:
            return i
    return None if n_e == n_g else min(n_e, n_g)
