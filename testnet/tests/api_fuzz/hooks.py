"""Checks of imi's JSON API for schemathesis, run by testnet/tests/api_fuzz.rs.

Loaded with SCHEMATHESIS_HOOKS=hooks; the test passes the node's address in
IMI_FUZZ_NODE (``http://127.0.0.1:PORT``) and the token schemathesis sends in
IMI_FUZZ_TOKEN. Two checks, beside schemathesis' own:

- ``refusals_are_problems``: every 4xx is ``application/problem+json`` with
  ``type``, ``title``, ``status`` (the response's) and ``detail``.
- ``refusals_change_nothing``: a fingerprint of the token user's state (their
  profile, API tokens, email notifications, My tasks and the case named in
  IMI_FUZZ_CASE) is taken before each request; after a refused one (4xx) it
  must be the same.

Half the generated case ids are replaced by IMI_FUZZ_CASE, a real request
of the user, so that steps and reads reach a case and not only 404s.

Requests run one at a time (``--workers 1``), so the fingerprint taken before
a request is the one to compare with after it.
"""

import atexit
import json
import os
from collections import Counter

import requests
import schemathesis

NODE = os.environ["IMI_FUZZ_NODE"].rstrip("/")
TOKEN = os.environ["IMI_FUZZ_TOKEN"]

# What the user's state is read from, and the members that change without
# anything stored changing: a token's last use (the fuzzer uses it) and the
# node's date.
STATE = ["/api/v1/me", "/api/v1/me/tokens", "/api/v1/me/notifications", "/api/v1/tasks?limit=100"]
VOLATILE = {"last_used", "today", "deliveries"}

# A real case of the user (IMI_FUZZ_CASE), whose steps and reads the fuzzer
# aims at too: it is part of the fingerprint, without the delivery states of
# its messages, which change as receipts arrive.
CASE = os.environ.get("IMI_FUZZ_CASE", "")
if CASE:
    STATE.append(f"/api/v1/cases/{CASE}")

SESSION = requests.Session()
SESSION.headers["Authorization"] = f"Bearer {TOKEN}"

_before = None

# What the checks saw, written to IMI_FUZZ_REPORT at exit so that the test
# knows they ran: statuses of the responses judged, and refusals compared.
_seen = Counter()
_compared = 0


@atexit.register
def _report():
    path = os.environ.get("IMI_FUZZ_REPORT")
    if path:
        with open(path, "w") as out:
            json.dump({"statuses": dict(_seen), "refusals_compared": _compared}, out)


def _strip(value):
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def fingerprint():
    """The user's state as the API shows it."""
    state = {}
    for path in STATE:
        response = SESSION.get(NODE + path, timeout=30)
        if response.status_code != 200:
            raise AssertionError(
                f"the fingerprint could not be read: GET {path} gave {response.status_code} {response.text}"
            )
        state[path] = _strip(response.json())
    return state


@schemathesis.hook
def before_call(context, case, kwargs):
    global _before
    _before = fingerprint()


@schemathesis.hook
def map_path_parameters(context, path_parameters):
    """Puts the real case in the path of every other case operation."""
    operation = context.operation
    if CASE and operation is not None and operation.path.startswith("/cases/{id}"):
        generated = str(path_parameters.get("id", ""))
        if len(generated) % 2 == 0:
            path_parameters = {**path_parameters, "id": CASE}
    return path_parameters


def _header(response, name):
    values = response.headers.get(name.lower()) or []
    return values[0] if values else None


@schemathesis.check
def refusals_are_problems(ctx, response, case):
    """Every refusal is application/problem+json with type, title, status and detail."""
    status = response.status_code
    _seen[str(status)] += 1
    if not 400 <= status < 500:
        return None
    kind = (_header(response, "content-type") or "").split(";")[0].strip()
    if kind != "application/problem+json":
        raise AssertionError(f"refusal {status} is {kind or 'untyped'}, not application/problem+json")
    try:
        problem = json.loads(response.content)
    except ValueError as err:
        raise AssertionError(f"refusal {status} is not JSON: {err}") from None
    if not isinstance(problem, dict):
        raise AssertionError(f"refusal {status} is not a JSON object: {problem!r}")
    missing = [m for m in ("type", "title", "status", "detail") if m not in problem]
    if missing:
        raise AssertionError(f"refusal {status} lacks {', '.join(missing)}: {problem!r}")
    if problem["status"] != status:
        raise AssertionError(f"refusal {status} says status {problem['status']!r}")
    if not str(problem["type"]).startswith("/api/docs#problem-"):
        raise AssertionError(f"refusal {status} has type {problem['type']!r}")
    if not str(problem["detail"]).strip():
        raise AssertionError(f"refusal {status} has an empty detail")
    return None


@schemathesis.check
def refusals_change_nothing(ctx, response, case):
    """A refused request leaves the user's state as it was."""
    global _compared
    if not 400 <= response.status_code < 500 or _before is None:
        return None
    after = fingerprint()
    _compared += 1
    if after != _before:
        changed = [path for path in STATE if after.get(path) != _before.get(path)]
        raise AssertionError(
            f"refused with {response.status_code}, yet {', '.join(changed)} changed:\n"
            f"before {json.dumps({p: _before[p] for p in changed}, ensure_ascii=False)}\n"
            f"after  {json.dumps({p: after[p] for p in changed}, ensure_ascii=False)}"
        )
    return None
