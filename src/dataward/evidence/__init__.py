"""Evidence-first trust: the signed log replayed into the state every gate decides on."""
