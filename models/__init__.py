"""Model definitions (``nn.Module``) and the one artifact format they are stored in."""
