"""Data layer: dataset discovery, image loading, splits, samplers and the torch Dataset."""
