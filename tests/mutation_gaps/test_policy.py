"""Where an action's role comes from, and who is on the client's side (survivors of `make mutate`).

An action is named "<scope>:<object>.<verb>"; the scope, the part before the first colon, says whether
the caller's role is their role in the tenant, their provider role, or any signed-in user's. The client's
people (client admin, approver, member) never see the provider's internal content; the provider's
people (provider admin, manager, staff) and nobody-at-all are not client people.
"""

from __future__ import annotations

import pytest

from tenants.policy import TABLE, Role, is_client, scope_of


@pytest.mark.parametrize(("action", "scope"), [
    ("tenant:documents.view", "tenant"),
    ("provider:audit.view", "provider"),
    ("account:manage", "account"),
    ("tenant:documents.view:extra", "tenant"),  # only the first colon separates the scope
    ("provider:a:b:c", "provider"),
])
def test_the_scope_is_the_part_before_the_first_colon(action, scope):
    assert scope_of(action) == scope


def test_every_action_of_the_table_has_one_of_the_three_scopes():
    assert {scope_of(action) for action in TABLE} == {"tenant", "provider", "account"}


@pytest.mark.parametrize(("role", "client"), [
    ("client_admin", True), ("client_approver", True), ("client_member", True),
    ("provider_admin", False), ("manager", False), ("staff", False), (None, False),
])
def test_only_the_clients_people_are_client_side(role, client):
    assert is_client(role) is client
    if role is not None:
        assert is_client(Role(role)) is client
