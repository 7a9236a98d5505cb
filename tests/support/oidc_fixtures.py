"""Fixtures for single sign-on tests: the OpenID Provider of tests/support/oidc.py.

``openid_provider`` is one provider for the whole session, started by the first test that asks
for it (that test, like every test using it, carries the ``processes`` marker);
``tamperable_openid_provider`` is the same provider, with any tampering a test asked for and no
token response used forgotten after the test. Without Node.js or the installed oidc-provider
the tests are skipped, except in CI (CI=true), where they fail.
"""

from __future__ import annotations

import os

import pytest

from tests.support.oidc import OpenIDProvider, node_executable, unavailable


@pytest.fixture(scope="session")
def openid_provider(tmp_path_factory):
    """The provider, started once per session and stopped at its end."""
    reason = unavailable()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}: required in CI")
        pytest.skip(reason)
    provider = OpenIDProvider(node_executable(), tmp_path_factory.mktemp("openid-provider") / "provider.log")
    provider.start()
    yield provider
    provider.stop()


@pytest.fixture
def tamperable_openid_provider(openid_provider):
    """The session's provider; a tampering still pending after the test is forgotten."""
    yield openid_provider
    openid_provider.reset()
