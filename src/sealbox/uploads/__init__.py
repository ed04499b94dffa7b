"""Resumable uploads (the tus 1.0 protocol), encrypted as they arrive."""
