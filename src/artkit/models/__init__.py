"""Models: timm's models by name, weights files, losses."""
