"""Schemathesis hooks for ``test_fuzz.py`` (loaded through ``SCHEMATHESIS_HOOKS``).

- tus bodies (``application/offset+octet-stream``) are arbitrary bytes;
- the fuzzer signs in with a password rather than holding one token, since the
  operations it calls may revoke tokens (``DELETE /api/v1/me/tokens/{id}``).
"""

from __future__ import annotations

import os

import httpx2 as httpx
import schemathesis
from hypothesis import strategies as st

schemathesis.openapi.media_type("application/offset+octet-stream", st.binary(max_size=512))


@schemathesis.auth(refresh_interval=20)
class SignIn:
    def get(self, case: schemathesis.Case, context: schemathesis.AuthContext) -> str:
        # From another loopback address than the fuzzer's own requests: the fuzzer's wrong
        # sign-ins use up its address's allowance, and must not lock this one out.
        transport = httpx.HTTPTransport(local_address="127.0.0.2")
        with httpx.Client(transport=transport, timeout=30) as client:
            response = client.post(
                os.environ["SEALBOX_FUZZ_URL"] + "/api/v1/auth/token",
                data={"username": os.environ["SEALBOX_FUZZ_USER"], "password": os.environ["SEALBOX_FUZZ_PASSWORD"]},
            )
        response.raise_for_status()
        return str(response.json()["access_token"])

    def set(self, case: schemathesis.Case, data: str, context: schemathesis.AuthContext) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}
