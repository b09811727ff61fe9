"""Three-way reconciliation: pure decisions and the sync run that applies them."""
