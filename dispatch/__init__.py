"""Work orders and dispatch to service outlets."""
