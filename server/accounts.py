"""Accounts, API keys and usage accounting.

A key (``cn_live_`` + 43 URL-safe characters, 256 random bits) is returned once, at
sign-up or rotation, and stored only as its SHA-256 digest: with that much entropy a
plain digest cannot be reversed or guessed, and lookups stay one indexed SELECT. The
first characters (``prefix``) are kept so the operator can tell keys apart.

Days are UTC days and the billing month is the UTC calendar month.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
import sqlite3
import time
from dataclasses import dataclass

from neurofab.errors import ValidationError

from .errors import ApiError
from .tiers import Tier

__all__ = [
    "KEY_PREFIX",
    "Account",
    "new_key",
    "hash_key",
    "normalise_email",
    "create_account",
    "authenticate",
    "find_account",
    "list_accounts",
    "set_tier",
    "rotate_key",
    "revoke_keys",
    "record_tier_request",
    "tier_requests",
    "approve",
    "utc_day",
    "seconds_to_next_utc_day",
    "utc_month",
    "usage",
]

KEY_PREFIX = "cn_live_"
_PREFIX_SHOWN = len(KEY_PREFIX) + 6
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")


@dataclass(frozen=True)
class Account:
    id: int
    email: str
    tier: str


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def normalise_email(value) -> str:
    if not isinstance(value, str):
        raise ValidationError("email", f"must be an email address (a string), not {value!r}")
    email = value.strip().lower()
    if len(email) > 254 or not _EMAIL.match(email):
        raise ValidationError("email", f"must be an email address like name@example.org, not {value!r}")
    return email


def _insert_key(conn: sqlite3.Connection, account_id: int, now: float) -> str:
    key = new_key()
    conn.execute(
        "INSERT INTO api_keys (key_hash, account_id, prefix, created_at) VALUES (?, ?, ?, ?)",
        (hash_key(key), account_id, key[:_PREFIX_SHOWN], now),
    )
    return key


def create_account(db, email: str, tier: str, *, approved_by: str | None = None) -> tuple[Account, str]:
    """A new account and its first key. 409 if the email is taken."""
    now = time.time()
    with db.write() as conn:
        try:
            cur = conn.execute(
                "INSERT INTO accounts (email, tier, created_at, approved_by) VALUES (?, ?, ?, ?)",
                (email, tier, now, approved_by),
            )
        except sqlite3.IntegrityError:
            raise ApiError(409, f"email {email!r} is already registered") from None
        key = _insert_key(conn, cur.lastrowid, now)
        conn.execute("DELETE FROM tier_requests WHERE email = ?", (email,))
    return Account(cur.lastrowid, email, tier), key


def authenticate(db, key: str | None) -> Account:
    """The account a key belongs to; 401 when the key is missing, unknown or revoked."""
    if not key:
        raise ApiError(401, "missing API key: send it in the X-API-Key header")
    row = (
        db.connect()
        .execute(
            "SELECT a.id, a.email, a.tier FROM api_keys k JOIN accounts a ON a.id = k.account_id"
            " WHERE k.key_hash = ? AND k.revoked_at IS NULL",
            (hash_key(key),),
        )
        .fetchone()
    )
    if row is None:
        raise ApiError(401, "invalid API key")
    return Account(row["id"], row["email"], row["tier"])


def find_account(db, email: str) -> Account:
    row = db.connect().execute("SELECT id, email, tier FROM accounts WHERE email = ?", (email,)).fetchone()
    if row is None:
        raise LookupError(f"no account with email {email!r}")
    return Account(row["id"], row["email"], row["tier"])


def list_accounts(db) -> list[dict]:
    """Every account with its live key prefixes and today's job count."""
    day = utc_day()
    rows = (
        db.connect()
        .execute(
            "SELECT a.id, a.email, a.tier, a.created_at, a.approved_by,"
            " (SELECT group_concat(prefix, ' ') FROM api_keys k"
            "  WHERE k.account_id = a.id AND k.revoked_at IS NULL) AS keys,"
            " (SELECT jobs FROM daily_usage u WHERE u.account_id = a.id AND u.day = ?) AS jobs_today"
            " FROM accounts a ORDER BY a.id",
            (day,),
        )
        .fetchall()
    )
    return [dict(r) for r in rows]


def set_tier(db, email: str, tier: str, *, approved_by: str = "operator") -> Account:
    with db.write() as conn:
        cur = conn.execute(
            "UPDATE accounts SET tier = ?, approved_by = ? WHERE email = ?", (tier, approved_by, email)
        )
        if cur.rowcount == 0:
            raise LookupError(f"no account with email {email!r}")
        conn.execute("DELETE FROM tier_requests WHERE email = ?", (email,))
    return find_account(db, email)


def rotate_key(db, email: str) -> str:
    """Revoke every key of the account and return a new one (shown once)."""
    account = find_account(db, email)
    now = time.time()
    with db.write() as conn:
        conn.execute(
            "UPDATE api_keys SET revoked_at = ? WHERE account_id = ? AND revoked_at IS NULL",
            (now, account.id),
        )
        return _insert_key(conn, account.id, now)


def revoke_keys(db, email: str) -> int:
    """Revoke every key of the account; returns how many were live."""
    account = find_account(db, email)
    with db.write() as conn:
        return conn.execute(
            "UPDATE api_keys SET revoked_at = ? WHERE account_id = ? AND revoked_at IS NULL",
            (time.time(), account.id),
        ).rowcount


def record_tier_request(db, email: str, tier: str) -> None:
    with db.write() as conn:
        conn.execute(
            "INSERT INTO tier_requests (email, tier, requested_at) VALUES (?, ?, ?)"
            " ON CONFLICT (email) DO UPDATE SET tier = excluded.tier, requested_at = excluded.requested_at",
            (email, tier, time.time()),
        )


def tier_requests(db) -> list[dict]:
    rows = db.connect().execute("SELECT email, tier, requested_at FROM tier_requests ORDER BY requested_at")
    return [dict(r) for r in rows.fetchall()]


def approve(db, email: str, tier: str | None = None) -> tuple[Account, str | None]:
    """Grant a paid tier: to an existing account (no new key), or create it (new key).

    Without ``tier`` the tier the address asked for at sign-up is granted.
    """
    if tier is None:
        row = db.connect().execute("SELECT tier FROM tier_requests WHERE email = ?", (email,)).fetchone()
        if row is None:
            raise LookupError(f"{email!r} has no pending tier request; name the tier to grant")
        tier = row["tier"]
    try:
        find_account(db, email)
    except LookupError:
        return create_account(db, email, tier, approved_by="operator")
    return set_tier(db, email, tier), None


def utc_day(now: float | None = None) -> str:
    return dt.datetime.fromtimestamp(time.time() if now is None else now, dt.UTC).strftime("%Y-%m-%d")


def seconds_to_next_utc_day(now: float | None = None) -> int:
    now = time.time() if now is None else now
    return max(1, int(86400 - now % 86400 + 0.999))


def utc_month(now: float | None = None) -> str:
    """The billing month, ``YYYY-MM`` (UTC)."""
    return dt.datetime.fromtimestamp(time.time() if now is None else now, dt.UTC).strftime("%Y-%m")


def usage(db, account: Account, tier: Tier, now: float | None = None) -> dict:
    """The body of ``GET /v1/usage``, from the accounting tables."""
    now = time.time() if now is None else now
    with db.read() as conn:
        row = conn.execute(
            "SELECT jobs FROM daily_usage WHERE account_id = ? AND day = ?", (account.id, utc_day(now))
        ).fetchone()
        month = conn.execute(
            "SELECT compute_seconds FROM monthly_usage WHERE account_id = ? AND month = ?",
            (account.id, utc_month(now)),
        ).fetchone()
    seconds = month["compute_seconds"] if month else 0.0
    return {
        "jobs_today": row["jobs"] if row else 0,
        "jobs_limit_today": tier.jobs_per_day,
        "compute_seconds_this_month": round(float(seconds), 6),
        "estimated_cost_gbp": tier.cost_gbp(float(seconds)),
        "tier": account.tier,
    }
