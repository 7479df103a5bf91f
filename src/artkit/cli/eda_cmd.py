"""artkit eda (registered on the app when imported)."""
