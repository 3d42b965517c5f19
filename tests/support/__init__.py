"""Helpers the test fixtures use to start real services on loopback."""
