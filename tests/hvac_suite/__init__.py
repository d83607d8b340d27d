"""Runs hvac's own integration suite (from its PyPI sdist) against OpenBao and tenantvault."""
