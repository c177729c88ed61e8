"""Which dependency an error shows to be down: the database, Redis or the object store.

A request that needs a part that is unreachable answers 503 with ``Retry-After`` (``portal.errors``),
never a 500: the caller did nothing wrong and the same request works once the part is back. Only
errors that say the part cannot be reached count; an error the part itself answered does not:

- database: the connection could not be made or was lost (SQLAlchemy invalidated it, or psycopg's error
  carries no SQLSTATE, or one of class 08 "connection exception"), the server is shutting down, starting
  up or out of connection slots (57P01, 57P02, 57P03, 53300), or the pool had no connection to give in
  time. A statement timeout (57014), a serialization failure (40001), a deadlock or a lock not
  available are answers of a working server: they stay errors of their own;
- redis: redis-py's connection and timeout errors (also "loading the dataset" after a restart);
- storage: botocore's connection errors and HTTP client errors (connect and read timeouts, a closed
  connection), and an answer of 500, 502, 503 or 504, or a throttling code, once its retries were spent
  (S3's SlowDown, KMS's ThrottlingException). S3 and KMS share these classes: an unreachable KMS is
  "storage" too (``tenants.keyring.KmsKeyring`` lets these through rather than call the key unavailable).

The exception is looked at with the ones it was raised from or during (``__cause__``,
``__context__``), so an outage wrapped by the code that met it is still found.
"""

from __future__ import annotations

RETRY_AFTER = 30  # seconds a client is asked to wait before it tries again (the Retry-After header)

# SQLSTATEs of a server that cannot take the request now (shutting down, starting up, full).
_PG_UNAVAILABLE = frozenset({"57P01", "57P02", "57P03", "53300"})
_HTTP_UNAVAILABLE = frozenset({500, 502, 503, 504})
# Error codes of a busy or failing service that some AWS APIs answer with a 4xx status (KMS throttles with 400).
_BUSY_CODES = frozenset({"SlowDown", "ThrottlingException", "Throttling", "RequestLimitExceeded",
                         "KMSInternalException", "DependencyTimeoutException"})


def _psycopg_down(exc: BaseException) -> bool:
    import psycopg

    if not isinstance(exc, psycopg.OperationalError):
        return False
    state = exc.sqlstate
    # No SQLSTATE: psycopg's own (client-side) error: the connection failed, was lost, or is closed.
    return state is None or state.startswith("08") or state in _PG_UNAVAILABLE


def _part(exc: BaseException) -> str | None:
    import botocore.exceptions as boto
    import redis.exceptions as redis_errors
    import sqlalchemy.exc as sa

    if isinstance(exc, sa.TimeoutError):  # the pool had no connection to give (QueuePool limit, timeout)
        return "database"
    if isinstance(exc, sa.DBAPIError):
        if exc.connection_invalidated:  # SQLAlchemy saw the connection die (is_disconnect)
            return "database"
        if isinstance(exc, sa.OperationalError) and exc.orig is not None and _psycopg_down(exc.orig):
            return "database"
        return None
    if _psycopg_down(exc):  # psycopg used without SQLAlchemy
        return "database"
    if isinstance(exc, redis_errors.ConnectionError | redis_errors.TimeoutError):
        return "redis"
    if isinstance(exc, boto.ConnectionError | boto.HTTPClientError):
        return "storage"
    if isinstance(exc, boto.ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        code = exc.response.get("Error", {}).get("Code")
        return "storage" if status in _HTTP_UNAVAILABLE or code in _BUSY_CODES else None
    return None


def dependency_down(exc: BaseException) -> str | None:
    """"database", "redis" or "storage" when ``exc`` (or an error it came from) shows that part to be
    unreachable; None for any other error."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        part = _part(current)
        if part:
            return part
        current = current.__cause__ or current.__context__
    return None
