"""Tenant lifecycle, memberships and roles, isolation, the authorisation table and audit."""
