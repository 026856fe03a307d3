"""Every exception hf-spider raises on purpose.

`HfSpiderError` is the base. Errors a user can cause carry a `hint` saying what to do next; the
CLI prints `error: <message> <hint>` on one line and exits with code 2. Classes also subclass the
matching built-in so callers can catch either (as huggingface_hub's errors do).
"""

from __future__ import annotations


class HfSpiderError(Exception):
    """Base class. `hint` tells the user what to do next."""

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.hint = hint

    def one_line(self) -> str:
        text = str(self).strip().replace("\n", " ")
        if self.hint:
            text = f"{text} — {self.hint}"
        return text


class UserInputError(HfSpiderError, ValueError):
    """A bad argument: unknown task tag, bad constraint, malformed option."""


class DatasetError(HfSpiderError, ValueError):
    """A dataset that cannot be used: not found, no label column, one class, empty split."""


class CatalogError(HfSpiderError, OSError):
    """A catalog that cannot be read or written."""


class HubConnectionError(HfSpiderError, ConnectionError):
    """The Hub (or the endpoint given) cannot be reached."""


class AuthError(HfSpiderError, PermissionError):
    """A token that is missing or rejected."""


class TargetError(HfSpiderError, ValueError):
    """An unknown device target, or an agent that refused or failed a job."""


class VariantRejectedError(TargetError):
    """One variant a target cannot take (over an agent's upload limit, a job the agent failed);
    the target still works for others, so a benchmark records it as skipped and goes on."""


class ConstraintError(HfSpiderError, ValueError):
    """No candidate meets the constraints; the message names the binding one."""


class UnsafeWeightsError(HfSpiderError, PermissionError):
    """Pickle weights or remote code that the user did not allow."""
