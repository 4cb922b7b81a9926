"""Errors of the accounts package, grouped by how the caller reacts."""


class AccountsError(Exception):
    """Base of every accounts error."""


class NotFound(AccountsError):
    """The user does not exist in this tenant (another tenant's looks the same)."""


class Conflict(AccountsError):
    """A user with that username exists already in the tenant."""


class InvalidValue(AccountsError):
    """A value is out of its allowed range; the message names the field."""


class LoginRefused(AccountsError):
    """Wrong tenant, username or password, or an inactive user: the caller is not told which."""


class LockedOut(AccountsError):
    """Too many failed logins: the account refuses every password until ``until``."""

    def __init__(self, until_iso: str) -> None:
        super().__init__(f"too many failed logins; try again after {until_iso}")
        self.until_iso = until_iso
