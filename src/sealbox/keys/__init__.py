"""Key management: status, rotation, re-wrapping, retirement, backup and restore."""
