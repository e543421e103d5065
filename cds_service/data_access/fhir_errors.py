"""Why FHIR data could not be had: one type per failure, each with one message and one metric label.

The message is safe to show the EHR (no URL, no token); `reason` is the bounded label of
`cytopenia_fhir_fetch_errors_total`. A timeout, wherever it is noticed (connecting, reading, or the
hook call's deadline passing while a worker thread still waits), is the one `TimedOut`, counted in
`cytopenia_fhir_fetch_timeouts_total`.
"""

from __future__ import annotations


class FetchFailed(Exception):
    """The data could not be had from the FHIR server."""

    reason = "failed"


class TimedOut(FetchFailed):
    reason = "timeout"

    def __init__(self, deadline_ms: int):
        super().__init__(f"not answered in time (deadline {deadline_ms} ms)")


class Unreachable(FetchFailed):
    reason = "unreachable"

    def __init__(self, error: Exception):
        super().__init__(f"the FHIR server could not be reached ({type(error).__name__})")


class AddressRefused(FetchFailed):
    reason = "private_address"

    def __init__(self) -> None:
        super().__init__("fhirServer resolves to a private, loopback or link-local address")


class TooLarge(FetchFailed):
    reason = "too_large"

    def __init__(self, limit: int):
        super().__init__(f"the answer is larger than the {limit} bytes allowed")


class Redirected(FetchFailed):
    reason = "redirect"


class TokenRefused(FetchFailed):
    reason = "token_refused"

    def __init__(self, status: int, token_sent: bool):
        why = "the access token was refused" if token_sent else "no access token was sent and the server requires one"
        super().__init__(f"the FHIR server answered HTTP {status}: {why}")


class ServerError(FetchFailed):
    """An HTTP status other than 200, or an OperationOutcome error inside a 200 answer."""

    reason = "server_error"


class NotFhir(FetchFailed):
    """Not FHIR JSON: another content type, malformed JSON, or JSON that is not a resource."""

    reason = "not_fhir"
