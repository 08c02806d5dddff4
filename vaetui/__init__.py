"""vaetui: train and explore variational autoencoders from a terminal."""

__version__ = "0.1.0"
