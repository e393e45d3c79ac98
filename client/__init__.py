"""Python client for Pitwall journeys (used by starter.py, the launcher and services)."""

from client.journeys import JourneyClient, connect_temporal

__all__ = ["JourneyClient", "connect_temporal"]
