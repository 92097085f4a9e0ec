"""Secrets out of Ray Serve's state: a served entity's resolved environment travels to its
Serve replicas sealed (Fernet) with a key that never goes through Serve.

The key is LADLE_RAY_SEAL_KEY in the environment of the ladle server and of every Ray node's
processes: a Ray cluster the server starts inherits it from the server (one is made at first
use when unset); an external cluster is started with it (`LADLE_RAY_SEAL_KEY=... ray start`).
Serve keeps only the sealed token and an HMAC digest (which lets the next reconciler owner
adopt an application deployed with the same arguments)."""

from __future__ import annotations

import hashlib
import hmac
import json
import os

ENV_VAR = "LADLE_RAY_SEAL_KEY"


def seal_key() -> bytes:
    """This process's seal key; made (and put in os.environ, so that a local Ray cluster
    started from here inherits it) when unset."""
    from cryptography.fernet import Fernet

    key = os.environ.get(ENV_VAR)
    if not key:
        key = Fernet.generate_key().decode()
        os.environ[ENV_VAR] = key
    return key.encode()


def seal(data: dict, key: bytes) -> str:
    from cryptography.fernet import Fernet

    return Fernet(key).encrypt(json.dumps(data, sort_keys=True).encode()).decode()


def unseal(token: str) -> dict:
    """In a Serve replica: open what the server sealed (the key from this node's environment)."""
    from cryptography.fernet import Fernet, InvalidToken

    key = os.environ.get(ENV_VAR)
    if not key:
        raise RuntimeError(f"{ENV_VAR} is not set on this Ray node: start the cluster with the "
                           "ladle servers' seal key in its environment")
    try:
        return json.loads(Fernet(key.encode()).decrypt(token.encode()))
    except InvalidToken:
        raise RuntimeError(f"this Ray node's {ENV_VAR} is not the ladle server's") from None


def digest(key: bytes, payload: dict) -> str:
    return hmac.new(key, json.dumps(payload, sort_keys=True, default=str).encode(),
                    hashlib.sha256).hexdigest()[:16]
