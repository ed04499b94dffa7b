"""Pure cryptographic mechanisms: bytes in, bytes out.

This package imports nothing else from sealbox. Its exceptions are its own and are
translated into ``sealbox.errors`` by the services that call it.
"""
