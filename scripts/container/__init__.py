"""Build and run the bundle's container image (``make container``, docs/DEPLOYMENT.md)."""
