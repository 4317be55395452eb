"""Continuous training: retrain a model on new data, compare it with the served primary on
the same held-out rows, register it with its lineage and send it out under a rollout policy
(``python -m scripts.retrain``; docs/RETRAINING.md)."""
