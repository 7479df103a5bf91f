"""artkit clean (registered on the app when imported)."""
