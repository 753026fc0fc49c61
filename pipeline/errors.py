"""Errors, named by what the caller must do next.

    PipelineError
    ├── ConfigError                  bad configuration or usage: fix the file/flag, exit 2
    ├── DatabaseError                the database cannot be reached or refuses us: exit 2
    ├── RetriableError               try again later; carries ``retry_after`` (seconds) when known
    │   ├── RateLimitedError         HTTP 429 (the whole service pauses)
    │   └── TransientError           5xx, timeouts, connection resets, truncated or invalid bodies
    ├── FatalError                   the stream cannot go on; the message says what to do
    │   ├── HTTPStatusError          a 4xx other than 429 (and the 401/422 auth ones once refreshed)
    │   ├── AuthError                credentials refused, token refresh and re-login failed
    │   ├── ContractError            the API answered with a shape we do not understand
    │   ├── ViolationBudgetError     too many 429s for one rate group: stopped before the API bans us
    │   ├── DeferredError            the server asked for a wait beyond max_wait_seconds, or a
    │   │                            deadline passed: stopped cleanly, resume later
    │   └── MigrationError           the database schema and sql/ disagree
    └── SkippableRecordError         one record cannot be transformed: it goes to etl.rejects

Every message names the value, the place and the fix; URLs and secrets are redacted by the caller
(``pipeline.redact``) before they reach a message.
"""

from __future__ import annotations


class PipelineError(Exception):
    """Root of every error the pipeline raises on purpose."""


class ConfigError(PipelineError):
    """Configuration or usage is wrong; the process exits with status 2."""

    def __init__(self, problems: list[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class DatabaseError(PipelineError):
    """The database cannot be reached or refuses the connection; the process exits with status 2."""


class RetriableError(PipelineError):
    """A failure that may succeed if the same request is tried again later."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RateLimitedError(RetriableError):
    """The service answered 429: every worker of that service must pause."""


class TransientError(RetriableError):
    """5xx, timeout, reset connection, truncated or invalid body."""


class FatalError(PipelineError):
    """The stream cannot continue; retrying the same request will not help."""


class HTTPStatusError(FatalError):
    """A 4xx response (other than 429) that retrying will not fix."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


class AuthError(FatalError):
    """Credentials were refused and neither refresh nor a new login helped."""


class ContractError(FatalError):
    """The API answered with a document whose shape we do not understand."""


class ViolationBudgetError(FatalError):
    """A rate group answered 429 more often than its violation budget allows within its window.

    ``resume_at`` (epoch seconds) is when the ledger frees the budget again, when known.
    """

    def __init__(self, message: str, *, resume_at: float | None = None) -> None:
        super().__init__(message)
        self.resume_at = resume_at


class DeferredError(FatalError):
    """Stop this source cleanly and resume later: a server-asked wait or a deadline is too long.

    ``resume_at`` (epoch seconds) is the moment the server named, when it named one.
    """

    def __init__(self, message: str, *, resume_at: float | None = None) -> None:
        super().__init__(message)
        self.resume_at = resume_at


class MigrationError(FatalError):
    """The migrations in sql/ and the database's record of them disagree."""


class SkippableRecordError(PipelineError):
    """One record cannot be transformed; it is written to etl.rejects and the stream goes on."""
