"""artkit eval (registered on the app when imported)."""
