"""Build of the optional native leaf hasher, and the modules the wheel leaves out (the rest is in pyproject.toml).

``dataward.core._leafhash`` needs only a C compiler (no library: SHA-256 is built in). It is optional: when
it cannot be built the install still succeeds and ``dataward.core.leafhash`` uses its pure-Python twin, which gives
byte-identical digests (ADR 0029).

The demo (``make demo``), its incident chapter and its terminal narration (``cli/demo_output.py``) live in
the checkout, not in the installed package: the wheel leaves them out. An editable install (``make venv``)
still runs them from ``src/``.
"""

from typing import Any

from setuptools import Extension, setup
from setuptools.command.build_py import build_py

#: (package, module) pairs of the checkout that the wheel does not ship
NOT_IN_WHEEL = frozenset({("dataward", "demo"), ("dataward.cli", "demo_output"), ("dataward.incident", "demo_chapter")})


class BuildPy(build_py):
    """``build_py`` without the checkout-only modules."""

    def find_package_modules(self, package: str, package_dir: str) -> Any:
        return [m for m in super().find_package_modules(package, package_dir) if (m[0], m[1]) not in NOT_IN_WHEEL]


setup(
    cmdclass={"build_py": BuildPy},
    ext_modules=[
        Extension(
            "dataward.core._leafhash",
            sources=["src/dataward/core/_leafhash.c"],
            extra_compile_args=["-O3", "-Wall"],
            optional=True,
        )
    ],
)
