"""bitmix: generator of bit-serial, mixed-datatype LLM inference accelerators."""

__version__ = "0.1.0"
