"""Tests of the `tenantvault` command line against a real `tenantvault serve --dev`."""
