"""Every action dataward authorizes, as one enumeration. Pure (no I/O).

An :class:`Action` is a :class:`str` (a StrEnum), so it is written into log entries and compared with the
actions of entries read back exactly like the strings it replaces. :data:`dataward.access.PERMISSIONS`
names the roles allowed each one.
"""

from __future__ import annotations

import enum


class Action(enum.StrEnum):
    """An action the access layer checks (deny by default: an action not listed is refused)."""

    # identity and configuration
    PRINCIPAL_ADD = "principal.add"
    ROLE_GRANT = "role.grant"
    ROLE_REVOKE = "role.revoke"
    KEY_GENERATE = "key.generate"  # logs written before keyrings (now key.add)
    KEY_ADD = "key.add"
    KEY_MIGRATE = "key.migrate"
    KEY_ROTATE = "key.rotate"
    KEY_REVOKE = "key.revoke"
    SOURCE_ADD = "source.add"
    SOURCE_UPDATE = "source.update"
    POLICY_SET = "policy.set"
    WORKSPACE_DOCTOR = "workspace.doctor"
    INTEL_ADD = "intel.add"
    # admin changes under the k-of-n admin threshold
    ADMIN_PROPOSE = "admin.propose"
    ADMIN_SIGN = "admin.sign"
    ADMIN_WITHDRAW = "admin.withdraw"
    ADMIN_THRESHOLD = "admin.threshold"
    # the supply chain
    BATCH_ACQUIRE = "batch.acquire"
    BATCH_REFUSE = "batch.refuse"
    BATCH_GENERATION = "batch.generation"
    MODEL_SCAN = "model.scan"
    BATCH_VERIFY = "batch.verify"
    BATCH_SCREEN = "batch.screen"
    AUDIT_SAMPLE = "audit.sample"
    AUDIT_DECIDE = "audit.decide"
    AUDIT_COMPLETE = "audit.complete"
    BATCH_APPROVE = "batch.approve"
    BATCH_REJECT = "batch.reject"
    DATASET_RELEASE = "dataset.release"
    DATASET_ROLLBACK = "dataset.rollback"
    BATCH_REVOKE = "batch.revoke"
    RUN_RECORD = "run.record"
    DATA_READ = "data.read"
    REDTEAM_RUN = "redteam.run"
    INCIDENT_OPEN = "incident.open"
    INCIDENT_RESOLVE = "incident.resolve"
    LOG_VERIFY = "log.verify"
    LOG_REPLAY = "log.replay"
    FEDERATION_NODE_ADD = "federation.node.add"
    FEDERATION_ROUND = "federation.round"
    TOKEN_CREATE = "token.create"  # noqa: S105 - an action name, not a secret
    TOKEN_REVOKE = "token.revoke"  # noqa: S105 - an action name, not a secret
    CONSOLE_READ = "console.read"
