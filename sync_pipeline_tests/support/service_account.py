"""Throwaway service-account JSON key files for tests: a fresh RSA key whose token_uri points at the emulator."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

TEST_CLIENT_EMAIL = "sync-reader@sync-pipeline-test.iam.gserviceaccount.com"
TEST_PROJECT_ID = "sync-pipeline-test"
RSA_KEY_BITS = 2048  # the size Google issues; google-auth signs the JWT grant with it (RS256)
RSA_PUBLIC_EXPONENT = 65537  # the standard exponent; cryptography refuses most others
# The file name matches the repository's .gitignore pattern *service_account*.json, so a key is never committed.
KEY_FILE_NAME = "test_service_account.json"


@dataclass(frozen=True)
class ServiceAccountKey:
    path: Path
    client_email: str
    token_uri: str
    public_key_pem: bytes  # for the emulator to check the JWT grant's signature


@functools.cache
def _private_key() -> rsa.RSAPrivateKey:
    # Generating an RSA key costs tens of milliseconds: one per test session is enough, it never leaves tmp dirs.
    return rsa.generate_private_key(public_exponent=RSA_PUBLIC_EXPONENT, key_size=RSA_KEY_BITS)


def write_service_account_key(
    directory: Path,
    token_uri: str,
    *,
    client_email: str = TEST_CLIENT_EMAIL,
    file_name: str = KEY_FILE_NAME,
) -> ServiceAccountKey:
    """Write a service-account JSON key file shaped like the ones the Google Cloud console hands out."""
    key = _private_key()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    info = {
        "type": "service_account",
        "project_id": TEST_PROJECT_ID,
        "private_key_id": "0123456789abcdef0123456789abcdef01234567",
        "private_key": private_pem,
        "client_email": client_email,
        "client_id": "123456789012345678901",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "universe_domain": "googleapis.com",
    }
    path = directory / file_name
    path.write_text(json.dumps(info, indent=2), encoding="utf-8")
    return ServiceAccountKey(path=path, client_email=client_email, token_uri=token_uri, public_key_pem=public_pem)
