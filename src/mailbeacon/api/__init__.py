"""The REST API (FastAPI): JSON over the CRM, tracking data, reports and rules."""
