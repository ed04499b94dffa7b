"""sealbox: a self-hosted server for sharing files, encrypted at rest."""

__version__ = "0.1.0"
