"""Access tokens: JWTs made and checked by flask-jwt-extended with the algorithm fixed server-side."""
from __future__ import annotations

import time
from contextlib import nullcontext
from datetime import timedelta

import jwt
from flask import Flask, has_app_context
from flask_jwt_extended import JWTManager, create_access_token, decode_token
from flask_jwt_extended.exceptions import JWTExtendedException

from baas.errors import Unauthorized


def configure(app: Flask, config: dict) -> JWTManager:
    section = config["jwt"]
    app.config.update(
        JWT_SECRET_KEY=section["secret"],
        JWT_ALGORITHM=section["algorithm"],
        # Only the one algorithm we sign with is accepted, so alg=none and algorithm-confusion tokens fail.
        JWT_DECODE_ALGORITHMS=[section["algorithm"]],
        JWT_ENCODE_ISSUER=section["issuer"],
        JWT_DECODE_ISSUER=section["issuer"],
        JWT_ACCESS_TOKEN_EXPIRES=timedelta(minutes=section["access_token_minutes"]),
        JWT_IDENTITY_CLAIM="sub",
        JWT_TOKEN_LOCATION=["headers"],
        JWT_DECODE_LEEWAY=0,
    )
    return JWTManager(app)


class AccessTokens:
    def __init__(self, app: Flask, minutes: int):
        self.app = app
        self.lifetime = timedelta(minutes=minutes)

    def _context(self):
        # Usable outside a request too (CLI, background jobs); flask-jwt-extended reads its settings from the app.
        return nullcontext() if has_app_context() else self.app.app_context()

    def issue(self, project_id: str, user_id: str, roles: list, anonymous: bool, session_id: str) -> tuple[str, int]:
        """Return (token, lifetime in seconds)."""
        claims = {
            "pid": project_id,
            "roles": list(roles),
            "anon": bool(anonymous),
            "sid": session_id,
            # Millisecond precision (a NumericDate may have a fraction) lets "tokens issued before this change"
            # be told apart from tokens issued right after it.
            "iat": round(time.time(), 3),
        }
        with self._context():
            token = create_access_token(identity=user_id, additional_claims=claims, expires_delta=self.lifetime)
        return token, int(self.lifetime.total_seconds())

    def decode(self, token: str) -> dict:
        """The verified claims, or Unauthorized saying what is wrong with the token."""
        if len(token) > 8192:
            raise Unauthorized("The access token is malformed.")
        try:
            with self._context():
                claims = decode_token(token)
        except jwt.ExpiredSignatureError:
            raise Unauthorized("The access token has expired; get a new one with POST /v1/auth/refresh.") from None
        except jwt.InvalidAlgorithmError:
            raise Unauthorized("The access token's signing algorithm is not accepted by this server.") from None
        except jwt.InvalidSignatureError:
            raise Unauthorized("The access token's signature is invalid.") from None
        except jwt.InvalidIssuerError:
            raise Unauthorized("The access token was not issued by this server (wrong issuer).") from None
        except jwt.MissingRequiredClaimError as exc:
            raise Unauthorized(f"The access token lacks the claim '{exc.claim}'.") from None
        except jwt.ImmatureSignatureError:
            raise Unauthorized("The access token is not valid yet.") from None
        except (jwt.InvalidTokenError, JWTExtendedException, ValueError, TypeError):
            raise Unauthorized("The access token is malformed.") from None
        if claims.get("type") != "access":
            raise Unauthorized("This is not an access token.")
        for name in ("sub", "pid", "sid", "jti"):
            if not isinstance(claims.get(name), str) or not claims[name]:
                raise Unauthorized(f"The access token lacks the claim '{name}'.")
        roles = claims.get("roles", [])
        if not isinstance(roles, list) or not all(isinstance(role, str) for role in roles):
            raise Unauthorized("The access token is malformed.")
        if not isinstance(claims.get("iat"), (int, float)) or not isinstance(claims.get("exp"), (int, float)):
            raise Unauthorized("The access token is malformed.")
        return claims
