"""SMS to service outlets and residents: providers behind one interface and the outbox (dispatch issue)."""
