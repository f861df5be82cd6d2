"""The outbound access of a process's sandboxes: settings, narrowing by a workspace, fnbox's own socket."""

from __future__ import annotations

from ipaddress import ip_address

import pytest

from fnbox.sandboxes.egress import EgressRefused
from fnbox.sandboxes.network import EgressSettings, own_addresses


def test_settings_travel_as_json_to_a_worker():
    settings = EgressSettings(policy="127.0.0.1", max_requests=3, own=(("127.0.0.1", 4000),))
    assert EgressSettings.from_json(settings.to_json()) == settings


def test_a_workspace_list_narrows_and_never_widens():
    egress = EgressSettings(policy="127.0.0.0/8").build()
    narrowed = egress.for_workspace(["127.0.0.2", "10.0.0.0/8"])
    narrowed.policy.check("x", ip_address("127.0.0.2"), 80)
    with pytest.raises(EgressRefused, match="allow-list"):
        narrowed.policy.check("x", ip_address("127.0.0.3"), 80)
    with pytest.raises(EgressRefused, match="allow-list"):
        narrowed.policy.check("x", ip_address("10.1.2.3"), 80)  # listed by the workspace, not by the server
    assert egress.for_workspace(None) is egress
    with pytest.raises(EgressRefused, match="turned off"):
        egress.for_workspace([]).policy.check("x", ip_address("127.0.0.2"), 80)


def test_fnbox_own_listening_socket_is_refused_whatever_the_policy():
    egress = EgressSettings(policy="127.0.0.0/8, ::1", own=(("0.0.0.0", 4321),)).build()
    egress.policy.check("localhost", ip_address("127.0.0.1"), 4322)
    for address in ("127.0.0.1", "::1", "0.0.0.0", "::ffff:127.0.0.1"):
        with pytest.raises(EgressRefused, match="fnbox service itself"):
            egress.policy.check("localhost", ip_address(address), 4321)
    with pytest.raises(EgressRefused, match="fnbox service itself"):
        egress.for_workspace(["127.0.0.1"]).policy.check("localhost", ip_address("127.0.0.1"), 4321)


def test_own_addresses_of_a_named_host_are_its_resolved_addresses():
    assert (ip_address("127.0.0.1"), 80) in own_addresses("localhost", 80)
