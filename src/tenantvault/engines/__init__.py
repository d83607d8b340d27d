"""Engines: the logic of each Vault mount (KV v2, sys, tokens), above the Backend."""
