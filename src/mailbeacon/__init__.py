"""mailbeacon: email engagement tracking for a lead-generation CRM."""

__version__ = "0.1.0"
