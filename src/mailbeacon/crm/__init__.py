"""The CRM spine: companies and plans, users and roles, leads, lists and campaigns."""
