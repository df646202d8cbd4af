"""bitmix fpga package."""
