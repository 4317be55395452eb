"""One BentoML service per model: each owns its model and batches requests to it."""
