"""Who may sign in and what a token stands for: users with roles, argon2id passwords,
login with lock-out and per-client throttling, tokens that expire and can be revoked."""

from accounts.errors import (
    AccountsError,
    Conflict,
    InvalidValue,
    LockedOut,
    LoginRefused,
    NotFound,
)
from accounts.models import STAFF_ROLES, IssuedToken, Role, Session, User
from accounts.service import (
    LoginPolicy,
    NewUser,
    check_password,
    create_user,
    get_user,
    hash_password,
    issue_token,
    list_users,
    login,
    revoke_token,
    revoke_user_tokens,
    session_for,
    set_active,
    set_password,
)
from accounts.throttle import LoginThrottle

__all__ = [
    "STAFF_ROLES",
    "AccountsError",
    "Conflict",
    "InvalidValue",
    "IssuedToken",
    "LockedOut",
    "LoginPolicy",
    "LoginRefused",
    "LoginThrottle",
    "NewUser",
    "NotFound",
    "Role",
    "Session",
    "User",
    "check_password",
    "create_user",
    "get_user",
    "hash_password",
    "issue_token",
    "list_users",
    "login",
    "revoke_token",
    "revoke_user_tokens",
    "session_for",
    "set_active",
    "set_password",
]
