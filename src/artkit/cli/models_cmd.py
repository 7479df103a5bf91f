"""artkit models (registered on the app when imported)."""
