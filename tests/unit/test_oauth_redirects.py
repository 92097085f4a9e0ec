"""Which redirect URIs an authorization request may name: loopback addresses only (any
port, http), nothing that merely starts or ends like one."""

from __future__ import annotations

import pytest

from ladle.control.oauth_grants import check_redirect_uri
from ladle.schemas.oauth import OAuthError


@pytest.mark.parametrize("uri", ["http://localhost:8020", "http://localhost:8020/callback?x=1",
                                 "http://127.0.0.1:51234/", "http://[::1]:8020/cb", "http://localhost/"])
def test_loopback_redirects_are_allowed(uri):
    check_redirect_uri(uri)


@pytest.mark.parametrize("uri", ["https://localhost:8020", "http://localhost.evil.example:8020/",
                                 "http://evil.example/?localhost", "http://localhost@evil.example/",
                                 "http://127.0.0.2:8020/", "http://localhost:99999/", "http://localhost:80x/",
                                 "http://localhost:8020/#frag", "localhost:8020", ""])
def test_anything_else_is_refused(uri):
    with pytest.raises(OAuthError) as e:
        check_redirect_uri(uri)
    assert e.value.error == "invalid_request" and e.value.status == 400
