"""Batch prediction over files (python -m model_bundle.batch): readers and writers,
per-model tasks, engines (in-process, a server, Ray Data), resumable chunked runs."""
