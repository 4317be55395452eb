"""Live monitoring of the served models: payload logging, data drift, model drift.

Torch-free and numpy-only, so the front and any report command can import it. State lives
in the front's process (workers=1): each replica reports its own window."""
