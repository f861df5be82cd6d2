"""The egress policy: FUNCTIONS_EGRESS read, and each address form judged by what it reaches."""

from ipaddress import ip_address

import pytest

from fnbox.sandboxes.egress import EgressPolicy, EgressRefused, canonical_address, resolve

PUBLIC_V4 = ip_address("93.184.215.14")
PUBLIC_V6 = ip_address("2606:2800:21f:cb07:6820:80da:af6b:8b2c")


def test_public_allows_public_addresses_of_both_families():
    policy = EgressPolicy.parse("public")
    policy.check("example.com", PUBLIC_V4, 443)
    policy.check("example.com", PUBLIC_V6, 443)
    assert EgressPolicy.parse("") == policy


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "fd00:ec2::254",
        "ff02::1",
    ],
)
def test_public_refuses_every_non_public_address(address):
    with pytest.raises(EgressRefused, match="not a public address"):
        EgressPolicy.parse("public").check("h", ip_address(address), 80)


@pytest.mark.parametrize(
    "address, inside",
    [
        ("::ffff:127.0.0.1", "127.0.0.1"),
        ("::ffff:a9fe:a9fe", "169.254.169.254"),
        ("64:ff9b::a00:1", "10.0.0.1"),
        ("2002:7f00:1::", "127.0.0.1"),
        ("::127.0.0.1", "127.0.0.1"),
    ],
)
def test_ipv6_forms_that_carry_an_ipv4_address_are_judged_by_it(address, inside):
    assert canonical_address(ip_address(address)) == ip_address(inside)
    with pytest.raises(EgressRefused, match=inside.replace(".", r"\.")):
        EgressPolicy.parse("public").check("h", ip_address(address), 80)


def test_none_refuses_everything():
    with pytest.raises(EgressRefused, match="turned off"):
        EgressPolicy.parse("none").check("example.com", PUBLIC_V4, 443)


def test_an_allow_list_of_names_and_patterns_reaches_their_public_addresses_only():
    policy = EgressPolicy.parse("api.example.com, *.stripe.com")
    policy.check("api.example.com", PUBLIC_V4, 443)
    policy.check("API.Example.COM.", PUBLIC_V4, 443)
    policy.check("files.stripe.com", PUBLIC_V4, 443)
    with pytest.raises(EgressRefused, match="not in the egress allow-list"):
        policy.check("stripe.com", PUBLIC_V4, 443)  # the pattern names what is under the domain
    with pytest.raises(EgressRefused, match="not in the egress allow-list"):
        policy.check("evil.com", PUBLIC_V4, 443)
    with pytest.raises(EgressRefused, match="list its range"):
        policy.check("api.example.com", ip_address("10.0.0.7"), 443)  # a listed name rebound to a private address


def test_listed_networks_open_private_ranges_on_purpose():
    policy = EgressPolicy.parse("127.0.0.1, 10.0.0.0/8, [fd00::1]")
    policy.check("localhost", ip_address("127.0.0.1"), 8080)
    policy.check("db.internal", ip_address("10.9.8.7"), 5432)
    policy.check("v6.internal", ip_address("fd00::1"), 80)
    policy.check("mapped", ip_address("::ffff:10.1.1.1"), 80)
    with pytest.raises(EgressRefused, match="not in the egress allow-list"):
        policy.check("localhost", ip_address("127.0.0.2"), 8080)
    with pytest.raises(EgressRefused, match="not in the egress allow-list"):
        policy.check("example.com", PUBLIC_V4, 443)  # an allow-list opens nothing it does not name


def test_fnbox_itself_is_never_reachable():
    own = {(ip_address("127.0.0.1"), 4000)}
    policy = EgressPolicy.parse("127.0.0.0/8", own=own)
    policy.check("localhost", ip_address("127.0.0.1"), 4001)
    for address in ("127.0.0.1", "::ffff:127.0.0.1"):
        with pytest.raises(EgressRefused, match="this fnbox service itself"):
            policy.check("localhost", ip_address(address), 4000)


@pytest.mark.parametrize("entry", ["publicx, *.", "*.", "exa mple.com", "http://x.com", "public, example.com", "a..b"])
def test_entries_that_are_no_host_address_or_range_are_refused(entry):
    with pytest.raises(ValueError, match="egress entry"):
        EgressPolicy.parse(entry)


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "2130706433", "0x7f.1", "0177.0.0.1", "127.1", "[::ffff:127.0.0.1]", "localhost", "0"]
)
def test_every_spelling_of_loopback_resolves_to_a_refused_address(host):
    with pytest.raises(EgressRefused):
        resolve(EgressPolicy.parse("public"), host, 80)


def test_resolve_gives_the_address_to_connect_to():
    assert resolve(EgressPolicy.parse("127.0.0.1"), "localhost", 80) == ip_address("127.0.0.1")
    with pytest.raises(EgressRefused, match="cannot be resolved"):
        resolve(EgressPolicy.parse("public"), "no-such-host.invalid", 80)
