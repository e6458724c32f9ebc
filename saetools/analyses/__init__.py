"""Analyses over a store: pure functions returning tidy DataFrames."""
