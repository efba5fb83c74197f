"""The tamper-evident audit log: RFC 6962 Merkle tree over signed entries, C2SP checkpoints, a witness."""
