"""Tests of the stamping engine (plain pytest, no database)."""
