"""Argon2id with parameters sized for web servers with few cores."""

from django.contrib.auth.hashers import Argon2PasswordHasher


class Argon2idHasher(Argon2PasswordHasher):
    """Django's defaults (8 lanes, 100 MiB) are built for many cores; on a 2-core web pod
    they cost 0.25 to 0.6 s a login. These follow OWASP's recommended argon2id settings
    (m=46 MiB, t=1, p=1) with one more pass. Hashes made with other parameters are
    upgraded on the next successful login (`must_update`); the algorithm name stays
    "argon2", so this hasher verifies Django's argon2 hashes too."""

    time_cost = 2
    memory_cost = 47104
    parallelism = 1
