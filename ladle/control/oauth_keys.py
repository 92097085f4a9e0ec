"""The keys ladle signs its OAuth access tokens (JWTs, RS256) with.

The first server to start on a database makes an RSA key and stores it: the public key as
PEM, the private key sealed with the server's secret key (control/secrets.py), so the
database never holds it in the clear. Every server on that database loads the same keys and
signs with the oldest, so a token one server issued verifies on every other; restarts keep
them. A token naming a key this server has not loaded yet (made by another server since)
makes `verify` raise UnknownKey: the caller reloads the keys off the event loop and retries.
"""

from __future__ import annotations

import base64
import time
import uuid
from typing import Any, Callable

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from ladle.control.store import Store

ALG = "RS256"


class UnknownKey(jwt.InvalidTokenError):
    """The token's `kid` names no key this server has loaded."""


class SigningKeys:
    def __init__(self, store: Store, seal: Callable[[str], str], unseal: Callable[[str], str]) -> None:
        self.store = store
        self.seal = seal
        self.unseal = unseal
        self._public: dict[str, Any] = {}       # kid -> public key
        self._signing: tuple[str, Any] | None = None

    def ensure(self) -> None:
        """Load the keys, making the first one when the database has none (blocks)."""
        if not self.store.oauth_keys():
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
            public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo).decode()
            # two servers starting at once may both add one: both verify, the oldest signs
            self.store.insert_oauth_key({"kid": uuid.uuid4().hex, "alg": ALG, "public_pem": public,
                                         "private_sealed": self.seal(pem),
                                         "created_ms": int(time.time() * 1000)})
        self.reload()

    def reload(self) -> None:
        rows = self.store.oauth_keys()
        self._public = {r["kid"]: serialization.load_pem_public_key(r["public_pem"].encode())
                        for r in rows}
        if rows:
            first = rows[0]
            self._signing = (first["kid"], serialization.load_pem_private_key(
                self.unseal(first["private_sealed"]).encode(), password=None))

    def issue(self, claims: dict[str, Any], ttl_s: int) -> str:
        """A signed JWT carrying `claims` plus `iat`, `exp` and a fresh `jti`."""
        if self._signing is None:
            raise RuntimeError("signing keys are not loaded (call ensure() at start-up)")
        kid, key = self._signing
        now = int(time.time())
        body = {**claims, "iat": now, "exp": now + ttl_s, "jti": uuid.uuid4().hex}
        return jwt.encode(body, key, algorithm=ALG, headers={"kid": kid})

    def verify(self, token: str) -> dict[str, Any]:
        """The claims of a token this server's keys signed. Raises jwt.InvalidTokenError
        (UnknownKey for a key not loaded here) on a bad, tampered or expired token."""
        kid = jwt.get_unverified_header(token).get("kid")
        key = self._public.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise UnknownKey(f"unknown signing key {kid!r}")
        return jwt.decode(token, key, algorithms=[ALG],
                          options={"require": ["exp", "iat", "sub"], "verify_aud": False})

    def jwks(self) -> dict[str, Any]:
        """The public keys as a JSON Web Key Set (RFC 7517)."""
        keys = []
        for kid, key in self._public.items():
            jwk = RSAAlgorithm.to_jwk(key, as_dict=True)
            keys.append({**jwk, "kid": kid, "alg": ALG, "use": "sig"})
        return {"keys": keys}


def looks_like_jwt(token: str) -> bool:
    """Three base64url parts whose first decodes to a JSON object header (cheap: no crypto)."""
    parts = token.split(".")
    if len(parts) != 3 or not parts[0]:
        return False
    try:
        head = base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4))
    except ValueError:
        return False
    return head.startswith(b"{")
