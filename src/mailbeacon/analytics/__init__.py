"""Analytics: reports and engagement summaries computed from events and rollups."""
