"""Accounts: users, passwords and API tokens."""
