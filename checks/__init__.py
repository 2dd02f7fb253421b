"""Asset checks, one module per layer; each check tests one property and shows the rows that fail."""
