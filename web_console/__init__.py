"""Seat console and supervisor pages (FastAPI)."""
