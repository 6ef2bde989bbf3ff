"""Writing new stack files: ``mlops stack init`` stamps a preset into a new account."""
