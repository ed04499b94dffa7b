"""The HTTP API: thin adapters from requests to services."""
