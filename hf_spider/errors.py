"""Every exception hf-spider raises on purpose.

`HfSpiderError` is the base. Errors a user can cause carry a `hint` saying what to do next; the
CLI prints `error: <message> <hint>` on one line and exits with code 2. Classes also subclass the
matching built-in so callers can catch either (as huggingface_hub's errors do).

`hub_error(exc, what)` is the one translation of a failed Hub call (huggingface_hub, requests)
into these classes; every stage uses it, so the same failure reads the same everywhere.
"""

from __future__ import annotations


class HfSpiderError(Exception):
    """Base class. `hint` tells the user what to do next."""

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.hint = hint
        if hint:  # shown under a Python traceback (PEP 678), where `str(exc)` is the message alone
            self.add_note(f"hint: {hint}")

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


class ExportError(HfSpiderError, RuntimeError):
    """A model that cannot be exported to ONNX."""


class ZooInstallError(HfSpiderError, OSError):
    """A registry package of the offline zoo could not be fetched or read."""


class ConstraintError(HfSpiderError, ValueError):
    """No candidate meets the constraints; the message names the binding one."""


class UnsafeWeightsError(HfSpiderError, PermissionError):
    """Pickle weights or remote code that the user did not allow."""


def _http_status(exc: BaseException) -> int | None:
    """The HTTP status of a failed call, from the exception or the ones it was raised from."""
    seen: BaseException | None = exc
    while seen is not None:
        status = getattr(getattr(seen, "response", None), "status_code", None)
        if status:
            return int(status)
        seen = seen.__cause__ or seen.__context__
    return None


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, for a one-line error (its class name where the
    message is empty): YAML and parser errors span several lines."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def hub_error(
    exc: BaseException,
    what: str,
    *,
    endpoint: str | None = None,
    not_found: type[HfSpiderError] = UserInputError,
) -> HfSpiderError:
    """The project's error for a failed Hub call, one line with what to do next.

    Args:
        exc: what huggingface_hub or requests raised (an `HfSpiderError` is returned unchanged).
        what: the call in words, e.g. `"dataset 'imdb'"`, `"the upload to me/recs"`.
        endpoint: the Hub's URL for the message (default: "the Hub").
        not_found: the class for a repository or revision that does not exist.

    Example:
        >>> raise hub_error(exc, f"model {repo_id}", endpoint=endpoint) from exc  # doctest: +SKIP
    """
    if isinstance(exc, HfSpiderError):
        return exc
    where = endpoint or "the Hub"
    names = {cls.__name__ for cls in type(exc).__mro__}
    status = _http_status(exc)
    if "GatedRepoError" in names:
        return AuthError(f"{what} is gated on {where}", hint="accept its terms on the Hub, then pass --token")
    if "LocalEntryNotFoundError" in names:  # offline, or the Hub unreachable, and not in the cache
        return HubConnectionError(
            f"{what} is not in the local Hub cache and {where} could not be reached",
            hint="connect to the network (and unset HF_HUB_OFFLINE), or fetch it once while online",
        )
    if names & {"RepositoryNotFoundError", "RevisionNotFoundError", "EntryNotFoundError"} or status == 404:
        return not_found(
            f"{what} was not found on {where}",
            hint="check the id and --endpoint; a private repo needs --token",
        )
    if status == 401:  # no token, or one the Hub does not know
        return AuthError(
            f"{where} refused {what} (HTTP 401: no valid token)",
            hint="pass a valid --token (a write token to upload), set HF_TOKEN, or run `hf auth login`",
        )
    if status == 403:
        return AuthError(
            f"{where} refused {what} (HTTP 403)",
            hint="a gated repo: accept its terms on the Hub; an upload needs a write token: pass a valid "
            "--token, set HF_TOKEN, or run `hf auth login`",
        )
    if status is not None:
        return HubConnectionError(
            f"{what}: {where} answered HTTP {status}", hint="retry later; check --endpoint"
        )
    if "OfflineModeIsEnabled" in names:
        return HubConnectionError(
            f"cannot reach {where} for {what}: HF_HUB_OFFLINE is set",
            hint="unset HF_HUB_OFFLINE to go online",
        )
    if names & {"ConnectionError", "Timeout", "ConnectTimeout", "ReadTimeout"} or isinstance(exc, OSError):
        return HubConnectionError(
            f"cannot reach {where} for {what}", hint="check --endpoint / HF_ENDPOINT and the network"
        )
    return HubConnectionError(f"{what} failed on {where}: {type(exc).__name__}", hint="retry later")
