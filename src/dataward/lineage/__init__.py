"""Lineage: training runs (inputs and outputs by digest, signed SLSA provenance), up- and downstream
queries, blast radius, and OpenLineage export."""
