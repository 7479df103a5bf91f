"""artkit train (registered on the app when imported)."""
