"""artkit predict (registered on the app when imported)."""
