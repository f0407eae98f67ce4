#!/usr/bin/env python3
"""Regenerates the signing keys used by the demo and the tests, and their JWKS documents.

Uses only the openssl command and Python's standard library:

    python3 tests/keys/generate.py

Writes conf/demo/jwt-demo-key.pem + conf/demo/jwks.json (the demo key, kid
versioned-routing-key) and tests/keys/*.pem + tests/keys/jwks.json (test keys of every
supported type). None of these keys may ever protect anything real.
"""
import base64
import json
import pathlib
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[2]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def openssl(*args: str, data: bytes | None = None) -> bytes:
    return subprocess.run(["openssl", *args], input=data, check=True, capture_output=True).stdout


def gen(path: pathlib.Path, *args: str) -> None:
    pem = openssl("genpkey", *args)  # PKCS#8 PEM
    path.write_bytes(pem)


def public_der(path: pathlib.Path) -> bytes:
    return openssl("pkey", "-in", str(path), "-pubout", "-outform", "DER")


def rsa_jwk(path: pathlib.Path, kid: str, alg: str | None) -> dict:
    modulus = openssl("rsa", "-in", str(path), "-noout", "-modulus").decode().strip()
    n = bytes.fromhex(modulus.split("=", 1)[1])
    jwk = {"kty": "RSA", "use": "sig", "kid": kid, "n": b64url(n), "e": "AQAB"}
    if alg:
        jwk["alg"] = alg
    return jwk


def ec_jwk(path: pathlib.Path, kid: str, crv: str, size: int, alg: str) -> dict:
    point = public_der(path)[-(1 + 2 * size):]  # uncompressed: 04 || X || Y
    assert point[0] == 4
    return {"kty": "EC", "use": "sig", "kid": kid, "crv": crv, "alg": alg,
            "x": b64url(point[1:1 + size]), "y": b64url(point[1 + size:])}


def ed_jwk(path: pathlib.Path, kid: str) -> dict:
    return {"kty": "OKP", "use": "sig", "kid": kid, "crv": "Ed25519", "alg": "EdDSA",
            "x": b64url(public_der(path)[-32:])}


def main() -> None:
    demo = ROOT / "conf" / "demo"
    gen(demo / "jwt-demo-key.pem", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048")
    demo_jwks = {"keys": [rsa_jwk(demo / "jwt-demo-key.pem", "versioned-routing-key", "RS256")]}
    (demo / "jwks.json").write_text(json.dumps(demo_jwks, indent=2) + "\n")

    keys = ROOT / "tests" / "keys"
    gen(keys / "rsa.pem", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048")
    gen(keys / "rsa-other.pem", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048")
    gen(keys / "ec256.pem", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256")
    gen(keys / "ec384.pem", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384")
    gen(keys / "ed25519.pem", "-algorithm", "ED25519")
    test_jwks = {"keys": [
        rsa_jwk(keys / "rsa.pem", "rs256", "RS256"),
        rsa_jwk(keys / "rsa.pem", "rs384", "RS384"),
        rsa_jwk(keys / "rsa.pem", "rs512", "RS512"),
        rsa_jwk(keys / "rsa.pem", "ps256", "PS256"),
        rsa_jwk(keys / "rsa.pem", "ps384", "PS384"),
        rsa_jwk(keys / "rsa.pem", "ps512", "PS512"),
        rsa_jwk(keys / "rsa.pem", "rsa-no-alg", None),
        rsa_jwk(keys / "rsa-other.pem", "other", "RS256"),
        ec_jwk(keys / "ec256.pem", "es256", "P-256", 32, "ES256"),
        ec_jwk(keys / "ec384.pem", "es384", "P-384", 48, "ES384"),
        ed_jwk(keys / "ed25519.pem", "eddsa"),
    ]}
    (keys / "jwks.json").write_text(json.dumps(test_jwks, indent=2) + "\n")


if __name__ == "__main__":
    main()
