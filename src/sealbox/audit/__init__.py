"""The audit trail: an append-only, hash-chained table of events."""
