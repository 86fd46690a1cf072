"""accounts domain: users, roles and API tokens of an org."""
