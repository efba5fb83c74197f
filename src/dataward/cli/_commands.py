"""Which module registers each top-level command. Modules are imported on first use of one of their
commands (see LazyGroup), so a command only pays for the libraries it needs.

Adding a command module: add its commands here (tests/test_cli_registry.py checks this map is complete).
"""

from __future__ import annotations

COMMAND_MODULES: dict[str, str] = {
    # workspace, identity, sources
    "init": "dataward.cli._workspace",
    "key": "dataward.cli._workspace",
    "principal": "dataward.cli._workspace",
    "source": "dataward.cli._workspace",
    "doctor": "dataward.cli._workspace",
    "admin": "dataward.cli._admin",
    # acquisition
    "acquire": "dataward.cli._acquire",
    "verify": "dataward.cli._acquire",
    "batch": "dataward.cli._acquire",
    "sign-delivery": "dataward.cli._acquire",
    # synthetic data
    "synthesize": "dataward.cli._synthetic",
    "coverage": "dataward.cli._synthetic",
    # audit log
    "log": "dataward.cli._log",
    # workflow gate
    "screen": "dataward.cli._workflow",
    "audit": "dataward.cli._workflow",
    "policy": "dataward.cli._workflow",
    "approve": "dataward.cli._workflow",
    "reject": "dataward.cli._workflow",
    "sign-statement": "dataward.cli._workflow",
    # screening suite
    "baseline": "dataward.cli._screen",
    "check": "dataward.cli._screen",
    "intel": "dataward.cli._screen",
    "scan-model": "dataward.cli._screen",
    # detection and simulation
    "detect": "dataward.cli._detect",
    "simulate": "dataward.cli._detect",
    "attacks": "dataward.cli._detect",
    "bench": "dataward.cli._detect",
    # versions and lineage
    "release": "dataward.cli._release",
    "diff": "dataward.cli._release",
    "rollback": "dataward.cli._release",
    "export": "dataward.cli._release",
    "import-dvc": "dataward.cli._release",
    "dataset": "dataward.cli._release",
    "run": "dataward.cli._release",
    "lineage": "dataward.cli._release",
    "blast-radius": "dataward.cli._release",
    # red team and incidents
    "redteam": "dataward.cli._redteam",
    "incident": "dataward.cli._redteam",
    # web console
    "serve": "dataward.cli._web",
    "token": "dataward.cli._web",
}
