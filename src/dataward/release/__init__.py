"""The release side: immutable dataset versions, the one verified way to read data out, diffs, rollbacks,
and DVC imports.

A version is a signed manifest (in-toto statement in a DSSE envelope, predicate
``https://dataward.dev/release/v1``) over the record leaves of its batches, its parent version and the
batches it contains. Reading (:func:`dataward.open`, :func:`dataward.export`) re-verifies every digest and
signature and refuses anything unapproved, revoked, unreleased or failing verification.
"""

from __future__ import annotations

#: nothing is re-exported here: the public API of this package is its modules' own ``__all__``
__all__: list[str] = []
