"""The ``sealbox`` command."""
