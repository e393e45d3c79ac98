"""Journeys on a virtual clock, with no Temporal server: the seed of the cohort simulator."""
