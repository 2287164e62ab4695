"""The one error the order domain raises for a refused request."""

from __future__ import annotations

from callcenter.errors import UserError


class DispatchError(UserError, domain="dispatch"):
    """A request refused with a message a person can act on. ``code`` says why:
    ``role`` (this role may not), ``state`` (not in this status), ``outlet`` (another outlet's
    order), ``invalid`` (missing or bad details), ``not_found``."""

    def __init__(self, message: str, code: str = "invalid") -> None:
        super().__init__(message, code)


class ConfigError(UserError, domain="config"):
    """An administrator's configuration change refused (categories, routing rules, the holiday
    calendar …). ``code``: ``invalid`` (a field is wrong: ``field`` names it), ``in_use`` (still
    used by orders or rules), ``cycle`` (a category moved below itself), ``not_found``,
    ``duplicate``."""
