"""Build of the optional native leaf hasher (everything else is in pyproject.toml).

``dataward.core._leafhash`` needs only a C compiler (no library: SHA-256 is built in). It is optional: when
it cannot be built the install still succeeds and ``dataward.core.leafhash`` uses its pure-Python twin, which gives
byte-identical digests (ADR 0029).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "dataward.core._leafhash",
            sources=["src/dataward/core/_leafhash.c"],
            extra_compile_args=["-O3", "-Wall"],
            optional=True,
        )
    ]
)
