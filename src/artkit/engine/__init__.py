"""Training: the ``artkit train`` entry point, the session, the loop and its hooks, k-fold, runs."""
