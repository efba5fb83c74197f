"""Catalog tables (SQLAlchemy Core). Times are ISO-8601 UTC strings so SQLite and PostgreSQL agree.

These definitions are the latest schema. Migrations (``migrations.py``) create them version by version;
a migration that changes an existing table uses explicit DDL, never these definitions.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

schema_version = Table(
    "schema_version",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("description", Text, nullable=False),
    Column("applied_at", String(32), nullable=False),
)

meta = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

principals = Table(
    "principals",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("created_at", String(32), nullable=False),
    Column("created_by", String(128), nullable=True),
    Column("disabled", Boolean, nullable=False, default=False),
)

role_grants = Table(
    "role_grants",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("principal", String(128), ForeignKey("principals.name"), nullable=False),
    Column("role", String(32), nullable=False),
    Column("source", String(128), nullable=True),  # None: the role applies to every source
    Column("granted_at", String(32), nullable=False),
    Column("granted_by", String(128), nullable=True),
    UniqueConstraint("principal", "role", "source", name="uq_role_grant"),
)

keys = Table(
    "keys",
    metadata,
    Column("keyid", String(64), primary_key=True),
    Column("principal", String(128), nullable=False),  # a principal name, or "@workspace-log"
    Column("public_key", String(64), nullable=False),  # raw Ed25519 key, hex
    Column("created_at", String(32), nullable=False),
    Column("expires_at", String(32), nullable=True),
    Column("status", String(16), nullable=False),  # active | retired | revoked
    Column("retired_at", String(32), nullable=True),
    Column("revoked_at", String(32), nullable=True),
    Column("revocation_reason", Text, nullable=True),
)

sources = Table(
    "sources",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("origin", Text, nullable=False),
    Column("license", Text, nullable=True),
    Column("license_status", String(16), nullable=False),  # spdx | non-spdx | invalid | missing
    Column("supplier", Text, nullable=True),
    Column("supplier_key", String(64), nullable=True),  # raw Ed25519 public key, hex
    Column("update_frequency", String(32), nullable=True),
    Column("created_at", String(32), nullable=False),
    Column("created_by", String(128), nullable=False),
)

batches = Table(
    "batches",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("source", String(128), ForeignKey("sources.name"), nullable=False),
    Column("state", String(16), nullable=False),
    Column("manifest_digest", String(64), nullable=False),  # SHA-256 of the signed envelope object
    Column("merkle_root", String(64), nullable=False),
    Column("record_count", BigInteger, nullable=False),
    Column("file_count", Integer, nullable=False),
    Column("byte_count", BigInteger, nullable=False),
    Column("created_at", String(32), nullable=False),
    Column("created_by", String(128), nullable=False),
    Column("updated_at", String(32), nullable=False),
)

batch_files = Table(
    "batch_files",
    metadata,
    Column("batch_id", String(64), ForeignKey("batches.id"), primary_key=True),
    Column("position", Integer, primary_key=True, autoincrement=False),
    Column("name", Text, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("format", String(16), nullable=False),
    Column("record_count", BigInteger, nullable=False),
    Column("records_digest", String(64), nullable=True),  # object holding the record leaf hashes
    Column("merkle_root", String(64), nullable=False),
)

log_entries = Table(
    "log_entries",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("time", String(32), nullable=False),
    Column("principal", String(128), nullable=False),
    Column("action", String(64), nullable=False),
    Column("subject", Text, nullable=False),
    Column("entry", LargeBinary, nullable=False),  # canonical JSON, the signed bytes
    Column("keyid", String(64), nullable=False),
    Column("signature", LargeBinary, nullable=False),
    Column("leaf_hash", LargeBinary, nullable=False),
)

log_nodes = Table(
    "log_nodes",
    metadata,
    Column("level", Integer, primary_key=True, autoincrement=False),
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("hash", LargeBinary, nullable=False),
)

checkpoints = Table(
    "checkpoints",
    metadata,
    Column("size", BigInteger, primary_key=True, autoincrement=False),
    Column("note", Text, nullable=False),
    Column("time", String(32), nullable=False),
)

attestations = Table(
    "attestations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("batch_id", String(64), nullable=True),
    Column("subject", Text, nullable=False),
    Column("predicate_type", Text, nullable=False),
    Column("envelope_digest", String(64), nullable=False),  # object in the meta area
    Column("principal", String(128), nullable=False),
    Column("keyid", String(64), nullable=False),
    Column("created_at", String(32), nullable=False),
)

# --- workflow (migration 3): screening reports, label audits, approvals ---------------------------------------

screening_reports = Table(
    "screening_reports",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("batch_id", String(64), nullable=False),
    Column("envelope_digest", String(64), nullable=False),  # the signed report attestation (meta object)
    Column("flagged_digest", String(64), nullable=False),  # meta object: JSON list of flagged record indices
    Column("flagged_count", BigInteger, nullable=False),
    Column("created_at", String(32), nullable=False),
    Column("created_by", String(128), nullable=False),
)

audits = Table(
    "audits",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("batch_id", String(64), nullable=False, unique=True),
    Column("report_id", Integer, nullable=False),
    Column("seed", String(64), nullable=False),
    Column("population", BigInteger, nullable=False),
    Column("flagged_population", BigInteger, nullable=False),
    Column("confidence", Float, nullable=False),
    Column("margin", Float, nullable=True),
    Column("status", String(16), nullable=False),  # open | complete
    Column("created_at", String(32), nullable=False),
    Column("created_by", String(128), nullable=False),
    Column("completed_at", String(32), nullable=True),
    Column("completed_by", String(128), nullable=True),
    Column("envelope_digest", String(64), nullable=True),
)

audit_items = Table(
    "audit_items",
    metadata,
    Column("audit_id", Integer, ForeignKey("audits.id"), primary_key=True),
    Column("record", BigInteger, primary_key=True, autoincrement=False),  # record number within the batch
    Column("stratum", String(16), nullable=False),  # random | flagged
    Column("draw", Integer, nullable=False),  # order of drawing, for display
    Column("file_position", Integer, nullable=False),
    Column("file_record", BigInteger, nullable=False),
    Column("record_digest", String(64), nullable=False),  # RFC 6962 leaf hash, hex
)

audit_decisions = Table(
    "audit_decisions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("audit_id", Integer, ForeignKey("audits.id"), nullable=False),
    Column("record", BigInteger, nullable=False),
    Column("reviewer", String(128), nullable=False),
    Column("decision", String(16), nullable=False),  # ok | wrong-label | malicious | unsure
    Column("new_label", Text, nullable=True),
    Column("note", Text, nullable=True),
    Column("decided_at", String(32), nullable=False),
)

approvals = Table(
    "approvals",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("batch_id", String(64), nullable=False),
    Column("principal", String(128), nullable=False),
    Column("keyid", String(64), nullable=False),
    Column("envelope_digest", String(64), nullable=False),
    Column("policy_digest", String(64), nullable=False),
    Column("created_at", String(32), nullable=False),
    UniqueConstraint("batch_id", "principal", name="uq_approval_principal"),
)

# --- versions and lineage (migration 4): datasets, immutable versions, training runs --------------------------

datasets = Table(
    "datasets",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("created_at", String(32), nullable=False),
    Column("created_by", String(128), nullable=False),
)

dataset_versions = Table(
    "dataset_versions",
    metadata,
    Column("dataset", String(128), ForeignKey("datasets.name"), primary_key=True),
    Column("number", Integer, primary_key=True, autoincrement=False),
    Column("parent", Integer, nullable=True),
    Column("kind", String(16), nullable=False),  # release | rollback
    Column("manifest_digest", String(64), nullable=False),  # signed release envelope (meta object)
    Column("merkle_root", String(64), nullable=False),
    Column("record_count", BigInteger, nullable=False),
    Column("batch_count", Integer, nullable=False),
    Column("created_at", String(32), nullable=False),
    Column("created_by", String(128), nullable=False),
)

version_batches = Table(
    "version_batches",
    metadata,
    Column("dataset", String(128), primary_key=True),
    Column("number", Integer, primary_key=True, autoincrement=False),
    Column("batch_id", String(64), ForeignKey("batches.id"), primary_key=True),
    Column("position", Integer, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("id", String(36), primary_key=True),  # a UUID (OpenLineage runId)
    Column("dataset", String(128), nullable=False),
    Column("number", Integer, nullable=False),
    Column("version_manifest", String(64), nullable=False),
    Column("status", String(16), nullable=False),  # completed | failed
    Column("principal", String(128), nullable=False),
    Column("started_at", String(32), nullable=False),
    Column("finished_at", String(32), nullable=False),
    Column("provenance_digest", String(64), nullable=False),  # signed SLSA provenance (meta object)
)

run_inputs = Table(
    "run_inputs",
    metadata,
    Column("run_id", String(36), ForeignKey("runs.id"), primary_key=True),
    Column("position", Integer, primary_key=True, autoincrement=False),
    Column("kind", String(16), nullable=False),  # version | base-model
    Column("ref", Text, nullable=False),  # DATASET@N, or the base model's path
    Column("sha256", String(64), nullable=False),  # version manifest envelope, or model file digest
)

run_outputs = Table(
    "run_outputs",
    metadata,
    Column("run_id", String(36), ForeignKey("runs.id"), primary_key=True),
    Column("position", Integer, primary_key=True, autoincrement=False),
    Column("name", Text, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
)

# web console API tokens (migration 7): only the SHA-256 of each token is stored
tokens = Table(
    "tokens",
    metadata,
    Column("id", String(32), primary_key=True),  # public id (shown in lists, used to revoke)
    Column("principal", String(128), ForeignKey("principals.name"), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),  # sha256 hex of the secret token
    Column("created_at", String(32), nullable=False),
    Column("created_by", String(128), nullable=False),
    Column("expires_at", String(32), nullable=False),
    Column("revoked_at", String(32), nullable=True),
    Column("revoked_by", String(128), nullable=True),
)

# --- red team and incidents (migration 6) ---------------------------------------------------------------------
redteam_results = Table(
    "redteam_results",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("model_sha256", String(64), nullable=False, index=True),  # "" when the model has no artifact digest
    Column("model", Text, nullable=False),  # its specification (module:function, URL, file)
    Column("data", Text, nullable=False),
    Column("passed", Boolean, nullable=False),
    Column("accuracy", Float, nullable=True),
    Column("failures", Integer, nullable=False),
    Column("principal", String(128), nullable=False),
    Column("created_at", String(32), nullable=False),
    Column("report_digest", String(64), nullable=False),  # the signed attestation (meta object)
)

# the web console lists rows with status "open" (dataward/web/_services.py incidents())
incidents = Table(
    "incidents",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("status", String(16), nullable=False),  # open | resolved
    Column("model_sha256", String(64), nullable=False),
    Column("summary", Text, nullable=False),
    Column("top_batch", String(64), nullable=True),
    Column("top_source", String(128), nullable=True),
    Column("opened_by", String(128), nullable=False),
    Column("opened_at", String(32), nullable=False),
    Column("resolved_by", String(128), nullable=True),
    Column("resolved_at", String(32), nullable=True),
    Column("report_digest", String(64), nullable=False),  # the signed incident report (meta object)
)

intel_feeds = Table(
    "intel_feeds",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("feed_id", String(200), nullable=False),
    Column("version", Integer, nullable=False),
    Column("issuer", Text, nullable=False),
    Column("feed_digest", String(64), nullable=False),  # the signed feed as delivered, a meta object
    Column("public_key", String(64), nullable=False),  # the feed key that verified it (raw Ed25519, hex)
    Column("indicators", Integer, nullable=False),
    Column("added_at", String(32), nullable=False),
    Column("added_by", String(128), nullable=False),
    UniqueConstraint("feed_id", "version", name="uq_intel_feed_version"),
)

# --- admin changes under a k-of-n threshold (migration 8): a projection of admin.propose / admin.sign entries ---
# the signed log is the authority (dataward.evidence.replay recomputes both tables); these rows are for listing
admin_changes = Table(
    "admin_changes",
    metadata,
    Column("id", String(64), primary_key=True),  # SHA-256 of the canonical statement (the CHANGE id)
    Column("action", String(64), nullable=False),  # the admin action the change applies (principal.add, ...)
    Column("subject", Text, nullable=False),
    Column("statement", Text, nullable=False),  # canonical JSON of the signed statement
    Column("status", String(16), nullable=False),  # pending | applied | withdrawn
    Column("proposed_by", String(128), nullable=False),
    Column("proposed_at", String(32), nullable=False),
)

admin_signatures = Table(
    "admin_signatures",
    metadata,
    Column("change_id", String(64), ForeignKey("admin_changes.id"), primary_key=True),
    Column("principal", String(128), primary_key=True),
    Column("keyid", String(64), nullable=False),  # the key that signed the admin.propose / admin.sign entry
    Column("signed_at", String(32), nullable=False),
)
