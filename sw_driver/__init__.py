"""bitmix sw_driver package."""
