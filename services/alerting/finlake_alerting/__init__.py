"""finlake alert service: routes alert events to the dashboard, email and Slack."""
