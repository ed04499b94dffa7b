"""Blob storage: moves opaque ciphertext, never sees keys or plaintext.

This package imports nothing else from sealbox.
"""
