"""Batch prediction over files (python -m scripts.batch_predict): readers and writers,
per-model tasks, engines (in-process, a server, Ray Data), resumable chunked runs."""
