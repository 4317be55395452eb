"""Command-line tools (training, importing checkpoints ...); run as ``python -m scripts.X``."""
