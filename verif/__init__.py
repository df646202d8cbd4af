"""bitmix verif package."""
