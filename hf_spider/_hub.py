"""Talking to a Hub: which endpoint, one client, and the checks made before any write.

Foundation: the ranker's `train --push-to-hub` and the recommendations' pushes both call these,
so a malformed repo id or a missing token stops before the work, the same way everywhere.
"""

from __future__ import annotations

from hf_spider.errors import AuthError, UserInputError, hub_error


def resolve_endpoint(endpoint: str | None) -> str:
    from huggingface_hub import constants

    return (endpoint or constants.ENDPOINT).rstrip("/")


def hub_api(token: str | None, endpoint: str | None):
    from huggingface_hub import HfApi

    return HfApi(endpoint=resolve_endpoint(endpoint), token=token, library_name="hf-spider")


def check_repo_id(repo_id: str, what: str = "repo") -> None:
    """Refuse a malformed Hub id, or one without a namespace (the Hub would put a bare name under
    the token's user, where cleanup and messages would miss it), before any request."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo_id)
        if repo_id.count("/") != 1:
            raise HFValidationError("no namespace")
    except HFValidationError:
        raise UserInputError(
            f"invalid {what} id {repo_id!r}", hint="use 'namespace/name' with letters, digits, '-', '_', '.'"
        ) from None


def check_write_access(repo_id: str, *, token: str | None, endpoint: str | None) -> str:
    """Validate `repo_id` and the token (from `token=` or the usual chain) before any write.

    Returns the user name the token belongs to. Raises `UserInputError` for a malformed id,
    `AuthError` for a missing or rejected token, `HubConnectionError` when the endpoint is down.
    """
    from huggingface_hub import get_token

    check_repo_id(repo_id)
    token = token or get_token()
    if not token:
        raise AuthError(
            "no Hugging Face token found to write to the Hub",
            hint="pass --token, set HF_TOKEN, or run `hf auth login`",
        )
    try:
        who = hub_api(token, endpoint).whoami(token=token)
    except OSError as exc:  # huggingface_hub's HTTP errors and requests' connection errors
        raise hub_error(exc, "the token", endpoint=resolve_endpoint(endpoint)) from exc
    return str(who.get("name", ""))


def unparsed_commit_reply(exc: BaseException, endpoint: str | None) -> bool:
    """Whether `exc` is huggingface_hub failing to *describe* a commit it made on `endpoint`.

    huggingface_hub 0.36 parses the commit URL a server returns against its import-time endpoint
    (`CommitInfo` builds a `RepoUrl` without `endpoint=`), so a commit to another endpoint (a
    mirror, the loopback test Hub) is applied and then raises this ValueError. Callers treat the
    commit as made."""
    other = resolve_endpoint(endpoint) != resolve_endpoint(None)
    return isinstance(exc, ValueError) and "Unable to retrieve user and repo ID" in str(exc) and other
