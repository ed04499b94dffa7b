"""Database mechanisms: the declarative base, engines and transactions, migrations."""
