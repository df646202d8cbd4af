"""bitmix hw package."""
