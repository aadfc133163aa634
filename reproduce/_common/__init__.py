"""What the reproduce/ scripts share: budgets and flags, the results table, training rows, the
synthetic event set and figure styling."""
