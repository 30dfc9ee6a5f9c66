"""Password hashing (argon2id) and the password policy."""
from __future__ import annotations

import unicodedata

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from baas.errors import Invalid


class Passwords:
    def __init__(self, time_cost: int = 3, memory_kib: int = 65536, parallelism: int = 4):
        self.hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism,
                                     hash_len=32, salt_len=16, type=Type.ID)
        # Verified against when the email is unknown, so a wrong email costs as much time as a wrong password.
        self._dummy_hash = self.hasher.hash("no such user; this only spends the same time")

    @classmethod
    def from_config(cls, config: dict) -> "Passwords":
        section = config["auth"]
        return cls(section["argon2_time_cost"], section["argon2_memory_kib"], section["argon2_parallelism"])

    @staticmethod
    def _normalise(password: str) -> str:
        # The same password typed on different keyboards (composed vs decomposed accents) must match.
        return unicodedata.normalize("NFC", password)

    def hash(self, password: str) -> str:
        return self.hasher.hash(self._normalise(password))

    def verify(self, stored_hash: str | None, password: str) -> bool:
        if not stored_hash:
            self.burn(password)
            return False
        try:
            return self.hasher.verify(stored_hash, self._normalise(password))
        except (VerificationError, InvalidHashError):  # VerificationError includes VerifyMismatchError
            return False

    def burn(self, password: str) -> None:
        try:
            self.hasher.verify(self._dummy_hash, self._normalise(password))
        except (VerificationError, InvalidHashError):
            pass

    def needs_rehash(self, stored_hash: str) -> bool:
        try:
            return self.hasher.check_needs_rehash(stored_hash)
        except (InvalidHashError, ValueError):
            return True


def check_policy(password, settings: dict, field: str = "password") -> str:
    """Raise Invalid when `password` breaks the project's policy."""
    if not isinstance(password, str):
        raise Invalid("The password must be a string.", errors={field: ["Must be a string."]})
    low, high = settings["password_min_length"], settings["password_max_length"]
    length = len(unicodedata.normalize("NFC", password))
    if length < low:
        raise Invalid(f"The password must have at least {low} characters.",
                      errors={field: [f"At least {low} characters."]})
    if length > high:
        raise Invalid(f"The password must have at most {high} characters.",
                      errors={field: [f"At most {high} characters."]})
    if not password.strip():
        raise Invalid("The password must not be only spaces.", errors={field: ["Only spaces."]})
    return password
