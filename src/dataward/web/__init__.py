"""The web console: FastAPI app (server-rendered pages + /api/v1), token auth, browser sessions.

Importing this package pulls in nothing heavy; ``dataward.web.app.create_app`` imports FastAPI.
"""

from __future__ import annotations

#: nothing is re-exported here: the public API of this package is its modules' own ``__all__``
__all__: list[str] = []
