"""The web console: FastAPI app (server-rendered pages + /api/v1), token auth, browser sessions.

Importing this package pulls in nothing heavy; ``dataward.web.app.create_app`` imports FastAPI.
"""
