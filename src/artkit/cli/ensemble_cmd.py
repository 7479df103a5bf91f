"""artkit ensemble (registered on the app when imported)."""
