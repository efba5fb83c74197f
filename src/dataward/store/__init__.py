"""Storage layers around the pure core: the catalog database, the object store, the key directory."""
