"""Data quality: eda and clean over one scan of the images."""
