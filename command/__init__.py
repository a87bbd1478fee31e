"""Command: the ECC service (the I/O shell around the workflows core)."""
