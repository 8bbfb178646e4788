"""Parsing references sent in paths and bodies (ids or keys) without surprises."""

MAX_DB_ID = 2**63 - 1


def db_id_valid(value: int) -> bool:
    """Within PostgreSQL's bigint id range (ids travel as arbitrary integers)."""
    return 0 < value <= MAX_DB_ID


def is_digits(text: str) -> bool:
    """ASCII digits only (`"²".isdigit()` is true, but `int("²")` fails)."""
    return text.isascii() and text.isdigit()


def db_id_or_none(text: str) -> int | None:
    """The id `text` names, None when it is not an id; out-of-range ids map to 0,
    which matches no row."""
    text = text.strip()
    if not is_digits(text):
        return None
    value = int(text)
    return value if db_id_valid(value) else 0


def has_nul(text: str) -> bool:
    return "\x00" in text
