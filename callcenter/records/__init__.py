"""Grid event (网格事件) and approval (审批办件) records kept for every order, pushed as signed webhooks."""
