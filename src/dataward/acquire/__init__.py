"""Acquisition: fingerprint every file and record, check supplier digests and signatures, sign a manifest."""
