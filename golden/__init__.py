"""bitmix golden package."""
