"""One HTTP client for both vendors: timeouts, `Retry-After`, bounded backoff, throttling.

Retry rules, in one place so that no adapter invents its own:

* 429 means the vendor did not act on the request, so every request is retried after
  `Retry-After` (or a backoff when the header is missing), within a time budget.
* 5xx (503 included: a proxy may answer it after the vendor accepted the call), read
  timeouts, dropped connections and unreadable 2xx bodies leave the outcome unknown: only
  requests declared idempotent are retried blindly. By default GET, HEAD, PUT and
  DELETE are idempotent and POST is not; adapters pass `idempotent=False` for purges
  (irreversible) and `idempotent=True` for state-setting POSTs, which are no-ops when
  repeated.
* a connect timeout or refused connection never reached the vendor: always retried.

How a call ended is a type, never a message to parse: `VendorHTTPError` (rejected: the
vendor said no), `RetryBudgetExceededError` (not sent, or sent only idempotently),
`OutcomeUnknownError` (a non-idempotent request may have been acted on).

What an answer says beyond its status is the vendor's own dialect, so the client knows none:
the adapter that builds it passes a `RateLimitReader` (rate-limit headers) and an
`ErrorCodeReader` (the short error code in an error body), each living in its vendor's
package. Without them `last_rate_limit` and the error code stay None.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import requests
import structlog
from requests.exceptions import ChunkedEncodingError
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError

from bridge.core.contract import (
    AccountBusyError,
    AdapterError,
    OutcomeUnknownError,
    PermanentError,
    RefusedError,
    TransientError,
    UnreachableError,
    UnreadableAnswerError,
)

__all__ = [
    "CallObserver",
    "ErrorCodeReader",
    "GaveUpUnknownError",
    "HttpClient",
    "RateLimitInfo",
    "RateLimitReader",
    "UnreachableVendorError",
    "VendorHTTPError",
    "VendorRefusedError",
    "answer_object",
    "observing_calls",
    "parse_retry_after",
]

log = structlog.get_logger(__name__)

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
#: the largest vendor answer read (a 1,000-ticket export page is about 2 MB)
MAX_BODY_BYTES = 64 * 1024 * 1024
AuthHook = Callable[[requests.PreparedRequest], None]
#: told of every request sent: its URL, and the status answered (None: no answer)
CallObserver = Callable[[str, int | None], None]
#: the observers of this run's calls: a context's own, so that runs side by side on one
#: origin (a worker's threads, pairs on one Zendesk account) each count their own calls
_observers: ContextVar[tuple[CallObserver, ...]] = ContextVar("bridge_call_observers", default=())


@contextmanager
def observing_calls(observer: CallObserver) -> Iterator[None]:
    """Tell `observer` of every vendor request sent in the block, by this thread (retries
    included): the metrics count vendor calls and 429s per vendor through it
    (`bridge.once.count_vendor_calls`)."""
    token = _observers.set((*_observers.get(), observer))
    try:
        yield
    finally:
        _observers.reset(token)


def _observed(url: str | None, status: int | None) -> None:
    for observer in _observers.get():
        observer(url or "", status)


class VendorHTTPError(PermanentError):
    """A vendor answered with an error status that retrying will not fix (4xx but 429)."""

    def __init__(self, method: str, path: str, status: int, error: str | None) -> None:
        self.method = method
        self.path = path
        self.status = status
        self.error = error
        super().__init__(f"{method} {path} answered {status}" + (f" {error}" if error else ""))


class VendorRefusedError(VendorHTTPError, RefusedError):
    """401 (after one credential refresh) or 403: the vendor refuses our credentials or
    rights, whatever the request."""


class RetryBudgetExceededError(TransientError):
    """Retries ran out on 429s or 5xx (`retry_after`: the last wait asked for)."""


class UnreachableVendorError(RetryBudgetExceededError, UnreachableError):
    """Retries ran out and no attempt ever connected (DNS, refused, connect timeout)."""


class GaveUpUnknownError(RetryBudgetExceededError, OutcomeUnknownError):
    """Retries ran out on an idempotent request and one attempt may have been acted on."""


@dataclass(frozen=True, slots=True)
class RateLimitInfo:
    """A vendor's rate-limit signal, read from an answer's headers by the vendor's reader."""

    limit: int | None
    remaining: int | None
    reset_seconds: float | None
    #: per-endpoint limits by the vendor's name for the endpoint: (total, remaining, resets)
    endpoints: Mapping[str, tuple[int | None, int | None, float | None]]


#: reads a vendor's rate-limit headers (None: the answer carries no signal it knows)
RateLimitReader = Callable[[Mapping[str, str]], RateLimitInfo | None]
#: reads a vendor's short error code (`RecordNotFound`...) from an error answer, or None
ErrorCodeReader = Callable[[requests.Response], str | None]
#: an error code is a name, never the body: longer ones are cut
MAX_ERROR_CODE = 100


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a `Retry-After` header (delta-seconds; an HTTP date counts as unknown)."""
    if value is None:
        return None
    try:
        return max(0.0, float(value.strip()))
    except ValueError:
        return None


#: the longest wait for the client's own pace a read sent ahead takes on its thread
#: (`HttpClient.read_ahead`), in seconds
AHEAD_WAIT_MAX = 1.0


class Throttle:
    """Client-side pacing: at most `per_second` requests per second (None: unpaced)."""

    def __init__(
        self,
        per_second: float | None,
        sleep: Callable[[float], None],
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._interval = 1.0 / per_second if per_second else 0.0
        self._next = 0.0
        self._lock = threading.Lock()
        self._sleep = sleep
        self._monotonic = monotonic

    def delay(self) -> float:
        """How long a request would wait now (0: it could go at once)."""
        return max(0.0, self._next - self._monotonic()) if self._interval else 0.0

    def reserve(self) -> float:
        """Take the next request's turn: the time (on `monotonic`'s clock) it may go at."""
        if not self._interval:
            return 0.0
        with self._lock:
            now = self._monotonic()
            turn = max(now, self._next)
            self._next = turn + self._interval
        return turn

    def wait_until(self, turn: float) -> None:
        """Wait for a turn `reserve` gave (at once if the clock is past it already)."""
        delay = turn - self._monotonic()
        if delay > 0:
            self._sleep(delay)

    def wait(self) -> None:
        self.wait_until(self.reserve())


class HttpClient:
    """A `requests.Session` with the vendor-neutral retry policy of this module.

    `auth` adds credentials to each prepared request; `on_unauthorized` (optional) is
    called once on a 401 to refresh credentials (short-lived tickets expire), after which
    the request is sent once more. `rate_limit` and `error_code` read the vendor's own
    signals (see the module docstring). `sleep` and `monotonic` must come from the same
    clock (a simulator's, in the demo and benchmarks).
    """

    def __init__(
        self,
        base_url: str,
        *,
        auth: AuthHook,
        timeout: float = 30.0,
        connect_timeout: float = 10.0,
        max_attempts: int = 6,
        retry_budget: float = 300.0,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        per_second: float | None = None,
        pacer: Callable[[], None] | None = None,
        on_unauthorized: Callable[[], None] | None = None,
        rate_limit: RateLimitReader | None = None,
        error_code: ErrorCodeReader | None = None,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        session: requests.Session | None = None,
        user_agent: str = "bridge",
    ) -> None:
        self.base_url = base_url.rstrip("/") + "/"
        self._auth = auth
        self._timeout = (connect_timeout, timeout)
        self._max_attempts = max_attempts
        #: `probing()`: a request that cannot connect fails at once instead of retrying
        self._probing = False
        self._retry_budget = retry_budget
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._on_unauthorized = on_unauthorized
        self._read_rate_limit = rate_limit
        self._read_error_code = error_code
        self._sleep = sleep
        self._throttle = Throttle(per_second, sleep, monotonic)
        #: waits, before each attempt, for a call the vendor account's shared budget allows
        #: (`bridge.budgets`: pairs sharing an account); None: none shared
        self._pacer = pacer
        self.session = session or requests.Session()
        self.session.headers.update({"Accept": "application/json", "User-Agent": user_agent})
        #: requests actually sent, retries included (benchmarks read this)
        self.calls = 0
        #: the largest answer read, in bytes: a bigger one is a failed read, never parsed
        self.max_body = MAX_BODY_BYTES
        #: the rate-limit signal of the latest answer (None: no reader, or no signal)
        self.last_rate_limit: RateLimitInfo | None = None
        #: one attempt at a time on the session (`requests.Session` is not made for more):
        #: a read sent ahead holds it while it is out
        self._sending = threading.Lock()
        #: the read sent ahead, waiting for the `request` that asks for it (`read_ahead`)
        self._ahead: _Ahead | None = None

    def url(self, path: str) -> str:
        return urljoin(self.base_url, path.lstrip("/"))

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self._backoff_cap, self._backoff_base * (2 ** (attempt - 1)))
        return random.uniform(ceiling / 2, ceiling)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        ok: tuple[int, ...] = (),
    ) -> requests.Response:
        """Send a request; return the response for 2xx and for any status listed in `ok`.

        Raises `VendorHTTPError` for other 4xx, `RetryBudgetExceededError` when retries
        run out on 429/5xx, `TransientError` for network failures that cannot be retried.
        """
        method = method.upper()
        safe = method in IDEMPOTENT_METHODS if idempotent is None else idempotent
        waited = 0.0
        attempt = 0
        reauthenticated = False
        #: whether an attempt may have reached the vendor and been acted on
        maybe_acted = False
        #: whether any attempt connected at all (none: the vendor is unreachable)
        connected = False
        ahead = self._take_ahead(method, path, params) if json is None and not headers else None
        while True:
            attempt += 1
            wait: float | None
            if ahead is None:
                self._throttle.wait()
                if self._pacer is not None:
                    self._pace(method, path, maybe_acted)
                prepared = self._prepare(method, path, params, json, headers)
                self.calls += 1
            else:
                prepared = ahead.prepared
            try:
                if ahead is None:
                    response = self._send(prepared, f"{method} {path}", write=not safe)
                else:
                    # the first attempt, sent ahead: its answer, or what it raised, here
                    # where it would have come from had it been sent now
                    taken, ahead = ahead, None
                    response = taken.result()
            except (requests.ConnectionError, requests.Timeout, ChunkedEncodingError) as exc:
                _observed(prepared.url, None)
                never_sent = _never_sent(exc)
                if not safe and not never_sent:
                    raise OutcomeUnknownError(
                        f"{method} {path}: connection lost with the outcome unknown "
                        f"({type(exc).__name__}); not retried because it is not idempotent"
                    ) from None
                maybe_acted = maybe_acted or not never_sent
                connected = connected or not never_sent
                reason, wait = f"network: {type(exc).__name__}", self._backoff(attempt)
                if self._probing and never_sent:
                    why = "the host does not resolve" if _unresolved(exc) else "cannot connect"
                    raise UnreachableVendorError(f"{method} {path}: {why}") from None
            else:
                connected = True
                if self._read_rate_limit is not None:
                    self.last_rate_limit = self._read_rate_limit(response.headers)
                status = response.status_code
                _observed(prepared.url, status)
                log.debug("http", method=method, path=path, status=status, attempt=attempt)
                if 200 <= status < 300 or status in ok:
                    return response
                if status == 401 and self._on_unauthorized and not reauthenticated:
                    reauthenticated = True
                    self._on_unauthorized()
                    attempt -= 1
                    continue
                if status == 429 or (status == 503 and safe):
                    retry_after = parse_retry_after(response.headers.get("Retry-After"))
                    reason = f"{status} {self.error_code(response) or ''}".strip()
                    wait = retry_after if retry_after is not None else self._backoff(attempt)
                    maybe_acted = maybe_acted or status != 429
                elif status >= 500:
                    if not safe:
                        raise OutcomeUnknownError(
                            f"{method} {path} answered {status}, the outcome unknown; not "
                            "retried because it is not idempotent"
                        )
                    reason, wait = str(status), self._backoff(attempt)
                    maybe_acted = True
                elif status in (401, 403):
                    raise VendorRefusedError(method, path, status, self.error_code(response))
                else:
                    raise VendorHTTPError(method, path, status, self.error_code(response))
            if attempt >= self._max_attempts or waited + wait > self._retry_budget:
                error: type[RetryBudgetExceededError] = (
                    GaveUpUnknownError
                    if maybe_acted
                    else RetryBudgetExceededError
                    if connected
                    else UnreachableVendorError
                )
                raise error(
                    f"{method} {path}: gave up after {attempt} attempts ({reason})",
                    retry_after=wait,
                )
            log.info("http.retry", method=method, path=path, reason=reason, wait=round(wait, 3))
            self._sleep(wait)
            waited += wait

    def _pace(self, method: str, path: str, maybe_acted: bool) -> None:
        """Wait for the shared budget's turn. One not waited for (`AccountBusyError`) means
        this attempt was not sent, but an earlier one of the request may have been acted
        on: then the outcome is unknown, as when its retries run out."""
        assert self._pacer is not None
        try:
            self._pacer()
        except AccountBusyError as exc:
            if not maybe_acted:
                raise
            raise GaveUpUnknownError(
                f"{method} {path}: gave up waiting for the account's turn after an attempt "
                "that may have been acted on",
                retry_after=exc.retry_after,
            ) from None

    def read_ahead(
        self, method: str, path: str, *, params: Mapping[str, Any] | None = None
    ) -> bool:
        """Send the first attempt of a read now, on a thread of its own, for the `request`
        of the same method, path and params that comes next to take (its answer, or what
        it raised, then surfaces there, and retries, if any, go on from there as usual);
        False, sending nothing, when it would wait on a shared budget (that wait stays where
        it is), or on the client's own pacing for more than `AHEAD_WAIT_MAX` (a slow pace:
        a stream closed midway waits for the read sent ahead), or one is out already. A
        shorter wait for the client's pace is taken on the read's thread: SuperOffice's
        ten requests a second made every next page wait 100 ms, longer than recording a
        page, so no page was ever read ahead there.

        Only a read, and only one whose answer may come from before whatever the caller
        does until it asks for it: a change stream's next page, while this one is
        recorded. Other requests meanwhile wait for it to be answered (one attempt at a
        time on the session). `drop_ahead` ends one that will not be asked for."""
        method = method.upper()
        if (
            method not in ("GET", "HEAD")
            or self._ahead is not None
            or self._pacer is not None
            or self._throttle.delay() > AHEAD_WAIT_MAX
        ):
            return False
        turn = self._throttle.reserve()
        prepared = self._prepare(method, path, params, None, None)
        self.calls += 1
        self._ahead = _Ahead((method, path, _params_key(params)), prepared, self, turn)
        return True

    def drop_ahead(self) -> None:
        """End a read sent ahead that no one will ask for (the stream was closed): wait for
        its answer, so that no thread outlives its reader, and let it go unread."""
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            # sent all the same: counted as every request is (the metrics' vendor calls)
            _observed(ahead.prepared.url, ahead.wait())
            log.debug("http.ahead_dropped", url=ahead.prepared.url)

    def _take_ahead(
        self, method: str, path: str, params: Mapping[str, Any] | None
    ) -> _Ahead | None:
        """The read sent ahead if it is this request's (else it stays for its own)."""
        ahead = self._ahead
        if ahead is None or ahead.key != (method, path, _params_key(params)):
            return None
        self._ahead = None
        return ahead

    def _prepare(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        json: Any,
        headers: Mapping[str, str] | None,
    ) -> requests.PreparedRequest:
        request = requests.Request(
            method, self.url(path), params=params, json=json, headers=dict(headers or {})
        )
        with self._sending:  # the session's cookies may be written by an answer meanwhile
            prepared = self.session.prepare_request(request)
        self._auth(prepared)
        return prepared

    def _send(
        self, prepared: requests.PreparedRequest, what: str, *, write: bool
    ) -> requests.Response:
        """One attempt, its answer read whole (`_read_body`): the only use of the session's
        connections, one at a time."""
        with self._sending:
            response = self.session.send(
                prepared, timeout=self._timeout, allow_redirects=False, stream=True
            )
            _read_body(response, self.max_body, what, write=write)
        return response

    @contextmanager
    def probing(self) -> Iterator[None]:
        """For `bridge check`: a host that does not resolve or refuses the connection is
        reported at once. A run retries those (a resolver's hiccup passes); a person
        waiting on a check should not wait out the backoff to learn of a typo."""
        self._probing = True
        try:
            yield
        finally:
            self._probing = False

    def get_json(self, path: str, **kwargs: Any) -> Any:
        return decode_json(self.request("GET", path, **kwargs), path)

    def error_code(self, response: requests.Response) -> str | None:
        """The vendor's short error code in this answer, as its reader finds it (never the
        body: at most `MAX_ERROR_CODE` characters); None without a reader."""
        if self._read_error_code is None:
            return None
        code = self._read_error_code(response)
        return code[:MAX_ERROR_CODE] if code is not None else None


def _params_key(params: Mapping[str, Any] | None) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((str(k), str(v)) for k, v in (params or {}).items()))


class _Ahead:
    """The first attempt of a read, sent on a thread of its own (`HttpClient.read_ahead`):
    the thread only sends and reads the answer; everything else (retries, waits, the
    answer's meaning) stays with the caller's `request`."""

    def __init__(
        self,
        key: tuple[str, str, tuple[tuple[str, str], ...]],
        prepared: requests.PreparedRequest,
        client: HttpClient,
        turn: float,
    ) -> None:
        self.key = key
        self.prepared = prepared
        self._client = client
        #: when the client's pace lets it go (`Throttle.reserve`)
        self._turn = turn
        self._response: requests.Response | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="bridge-read-ahead")
        self._thread.start()

    def _run(self) -> None:
        method, path, _params = self.key
        try:
            self._client._throttle.wait_until(self._turn)
            self._response = self._client._send(self.prepared, f"{method} {path}", write=False)
        except BaseException as exc:  # handed to the reader, who raises it as its own
            self._error = exc

    def wait(self) -> int | None:
        """Wait for the answer; its status (None: none came)."""
        self._thread.join()
        return None if self._response is None else self._response.status_code

    def result(self) -> requests.Response:
        """The answer, or raise what the attempt raised (the same exception)."""
        self._thread.join()
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        assert self._response is not None
        return self._response


def _read_body(response: requests.Response, limit: int, what: str, *, write: bool) -> None:
    """Read the answer, at most `limit` bytes: a bigger one fails the call instead of
    filling memory (it is not believed; after a write, the outcome is unknown)."""

    def too_large() -> AdapterError:
        response.close()
        error = OutcomeUnknownError if write else UnreadableAnswerError
        return error(f"{what}: answer larger than {limit:,} bytes; not read")

    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large()
    if response.raw is None:  # a response made in memory (a test's transport)
        if len(response.content) > limit:
            raise too_large()
        return
    data = bytearray()
    for chunk in response.iter_content(65_536):
        data += chunk
        if len(data) > limit:
            raise too_large()
    # what `requests` keeps once it has read a body itself
    response._content = bytes(data)
    response._content_consumed = True  # type: ignore[attr-defined]
    response.close()


def _never_sent(exc: BaseException) -> bool:
    """True when the request cannot have reached the vendor: the connection was never made
    (refused, DNS failure, connect timeout), so even a non-idempotent request may be resent."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, NewConnectionError | ConnectTimeoutError):
            return True
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException):
            current = reason
            continue
        args = getattr(current, "args", ())
        nested = next((a for a in args if isinstance(a, BaseException)), None)
        current = nested or current.__cause__ or current.__context__
    return False


def _unresolved(exc: BaseException) -> bool:
    """True when the failure was a name lookup (the host does not resolve)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, socket.gaierror | NameResolutionError):
            return True
        reason = getattr(current, "reason", None)
        args = getattr(current, "args", ())
        nested = reason if isinstance(reason, BaseException) else None
        nested = nested or next((a for a in args if isinstance(a, BaseException)), None)
        current = nested or current.__cause__ or current.__context__
    return False


def decode_json(response: requests.Response, path: str) -> Any:
    """The JSON body, or an error naming the path when it is malformed: a failed read for
    a GET, an unknown outcome for a write (the vendor answered 2xx, so it may have acted)."""
    try:
        return response.json()
    except ValueError:
        method = getattr(getattr(response, "request", None), "method", None) or "GET"
        read = method.upper() in ("GET", "HEAD")
        error = UnreadableAnswerError if read else OutcomeUnknownError
        raise error(
            f"{path}: malformed response body ({len(response.content)} bytes, "
            f"status {response.status_code})"
        ) from None


def answer_object(response: requests.Response) -> Mapping[str, Any] | None:
    """The answer's JSON object, or None (no JSON, or not an object): what an
    `ErrorCodeReader` looks into."""
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None
