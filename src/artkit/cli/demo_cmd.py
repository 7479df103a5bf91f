"""artkit demo (registered on the app when imported)."""
