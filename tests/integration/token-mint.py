#!/usr/bin/python3
"""Tokens for tests/integration/token-auth.sh, made with PyJWT (Debian's python3-jwt), as a
provider's backend would (docs/tokens.md), plus the bad ones a test needs.

  token-mint.py keygen ALG KID PEM   new key pair (EdDSA or ES256): the private key to PEM, the
                                     public JWK (kid, alg, use) on stdout
  token-mint.py jwks JWK-FILE...     a JWK Set of those public JWKs on stdout
  token-mint.py mint --key PEM --kid KID --iss T --sub S --aud A [--alg none|HS256]
                     [--iat-off N] [--ttl N] [--nbf-off N] [--scope S]
                                     a token on stdout; times relative to now
"""
import argparse
import json
import os
import sys
import time

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from jwt.algorithms import ECAlgorithm, OKPAlgorithm


def keygen(alg, kid, pem):
    if alg == "EdDSA":
        key = ed25519.Ed25519PrivateKey.generate()
        jwk = json.loads(OKPAlgorithm.to_jwk(key.public_key()))
    else:
        key = ec.generate_private_key(ec.SECP256R1())
        jwk = json.loads(ECAlgorithm.to_jwk(key.public_key()))
    with os.fdopen(os.open(pem, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    jwk.update(kid=kid, alg=alg, use="sig")
    print(json.dumps(jwk))


def mint(a):
    now = int(time.time())
    iat = now + a.iat_off
    claims = {"iss": a.iss, "sub": a.sub, "aud": a.aud, "iat": iat, "exp": iat + a.ttl}
    if a.nbf_off is not None:
        claims["nbf"] = now + a.nbf_off
    if a.scope is not None:
        claims["scope"] = a.scope
    headers = {"kid": a.kid}
    if a.alg == "none":
        return jwt.encode(claims, None, algorithm="none", headers=headers)
    if a.alg == "HS256":
        return jwt.encode(claims, "a shared secret the vault never has", algorithm="HS256",
                          headers=headers)
    with open(a.key, "rb") as f:
        key = serialization.load_pem_private_key(f.read(), password=None)
    alg = "EdDSA" if isinstance(key, ed25519.Ed25519PrivateKey) else "ES256"
    return jwt.encode(claims, key, algorithm=alg, headers=headers)


def main():
    if len(sys.argv) >= 5 and sys.argv[1] == "keygen":
        keygen(sys.argv[2], sys.argv[3], sys.argv[4])
        return
    if len(sys.argv) >= 3 and sys.argv[1] == "jwks":
        keys = []
        for name in sys.argv[2:]:
            with open(name) as f:
                keys.append(json.load(f))
        print(json.dumps({"keys": keys}))
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=["mint"])
    ap.add_argument("--key")
    ap.add_argument("--kid", required=True)
    ap.add_argument("--alg")
    ap.add_argument("--iss", required=True)
    ap.add_argument("--sub", required=True)
    ap.add_argument("--aud", required=True)
    ap.add_argument("--iat-off", type=int, default=0)
    ap.add_argument("--ttl", type=int, default=300)
    ap.add_argument("--nbf-off", type=int)
    ap.add_argument("--scope")
    print(mint(ap.parse_args()))


main()
