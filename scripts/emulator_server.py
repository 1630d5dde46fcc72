#!/usr/bin/env python3
"""The AWS emulator of the tests: moto's server (DynamoDB, SES v2 and KMS on one port),
made as strict as the real services where moto is kinder, and able to fail on request.

    emulator_server.py -H 127.0.0.1 -p PORT

What it adds in front of moto's own WSGI application:

- Isolation. moto applies the items of a transaction one by one and rolls back by
  restoring whole-table snapshots, which is not isolated under its threaded server.
  Requests reach moto one at a time; the service's conditions still decide who wins.
- DynamoDB's optimistic concurrency, which moto lacks. A TransactWriteItems holds its
  items for TRANSACTION_HOLD_MS (about a real transaction's latency) before it applies.
  Meanwhile another transaction touching one of them is cancelled
  (TransactionCanceledException, reason TransactionConflict), and a PutItem, UpdateItem
  or DeleteItem on one of them is rejected (TransactionConflictException). A transaction
  touching an item that a single-item write is working on is cancelled too. Single-item
  writes to one item never conflict with each other: they are serialised.
- Idempotent transactions. A TransactWriteItems repeated with the ClientRequestToken of
  one that succeeded within ten minutes answers that success again without applying
  anything; with other parameters it answers IdempotentParameterMismatchException.
- Faults on request, scoped to one access key id (each test that injects faults signs
  with its own), so tests running in parallel never see each other's faults:

      POST   /__emulator/faults   {"accessKey": "...", "operation": "dynamodb:TransactWriteItems",
                                   "skip": 0, "times": 1, "kind": "error" | "commit" | "delay",
                                   "status": 500, "code": "InternalServerError", "seconds": 4}
      DELETE /__emulator/faults?accessKey=...
      GET    /__emulator/stats    counters of conflicts, faults and transactions
      GET    /__emulator/calls?accessKey=...   requests signed with that key, by operation

  `operation` is `dynamodb:<Target>`, `kms:<Target>` or `sesv2:SendEmail`; `skip` lets the
  first matching requests through; `kind` "error" answers the error instead of the
  request, "commit" applies the request and then answers the error (a lost response),
  "delay" waits `seconds` before handling the request.
"""
import hashlib
import json
import os
import re
import sys
import threading
import time
from urllib.parse import parse_qs

import moto.server as server

TRANSACTION_HOLD_SECONDS = int(os.environ.get("TRANSACTION_HOLD_MS", "15")) / 1000.0
IDEMPOTENCY_WINDOW_SECONDS = 600
SINGLE_WRITES = {"PutItem", "UpdateItem", "DeleteItem"}

_apply = threading.Lock()  # one request inside moto at a time
_state = threading.Lock()  # guards everything below
_in_transaction = {}  # item id -> number of transactions holding it
_in_write = {}  # item id -> number of single-item writes working on it
_tokens = {}  # ClientRequestToken -> (parameters digest, expiry, response)
_faults = []  # dicts as posted
_calls = {}  # access key id -> operation -> requests
_stats = {
    "transactions": 0,
    "transactionsWithoutToken": 0,
    "transactionConflicts": 0,
    "writeConflicts": 0,
    "idempotentReplays": 0,
    "faults": 0,
}
_CREDENTIAL = re.compile(r"Credential=([^/]+)/[^/]+/([^/]+)/")


def _count(name):
    with _state:
        _stats[name] += 1


def _respond(start_response, status, body, headers=()):
    payload = json.dumps(body).encode()
    reasons = {200: "OK", 204: "No Content", 400: "Bad Request", 404: "Not Found"}
    start_response(
        f"{status} {reasons.get(status, 'Error')}",
        [("Content-Type", "application/x-amz-json-1.0"), ("Content-Length", str(len(payload)))] + list(headers),
    )
    return [payload]


def _aws_error(start_response, status, code, message, extra=None):
    body = {"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": message, "Message": message}
    body.update(extra or {})
    return _respond(start_response, status, body, [("x-amzn-ErrorType", code)])


def _operation(environ):
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target.startswith("DynamoDB_"):
        return "dynamodb:" + target.split(".", 1)[1]
    if target.startswith("TrentService."):
        return "kms:" + target.split(".", 1)[1]
    path = environ.get("PATH_INFO", "")
    if path.startswith("/v2/email/outbound-emails"):
        return "sesv2:SendEmail"
    if path.startswith("/v2/"):
        return "sesv2:" + path
    return "other:" + path


def _signer(environ):
    match = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
    return (match.group(1), match.group(2)) if match else ("", "us-east-1")


def _key_names(table, region):
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    try:
        found = dynamodb_backends[DEFAULT_ACCOUNT_ID][region].get_table(table)
    except Exception:  # an unknown table: moto answers the request with its own error
        return None
    return [name for name in (found.hash_key_attr, found.range_key_attr) if name]


def _item_id(table, key, region, whole_item=False):
    if whole_item:
        names = _key_names(table, region)
        key = {name: key.get(name) for name in names} if names else key
    return table + "|" + json.dumps(key, sort_keys=True)


def _transaction_items(request, region):
    ids = []
    for entry in request.get("TransactItems", []):
        for kind, body in entry.items():
            if kind == "Put":
                ids.append(_item_id(body["TableName"], body["Item"], region, whole_item=True))
            else:
                ids.append(_item_id(body["TableName"], body["Key"], region))
    return ids


def _single_item(operation, request, region):
    if operation == "PutItem":
        return _item_id(request["TableName"], request["Item"], region, whole_item=True)
    return _item_id(request["TableName"], request["Key"], region)


def _take_fault(access_key, operation):
    with _state:
        for fault in _faults:
            if fault.get("accessKey") != access_key or fault.get("operation") != operation:
                continue
            if fault.get("skip", 0) > 0:
                fault["skip"] -= 1
                return None
            if fault.get("times", 1) <= 0:
                continue
            fault["times"] = fault.get("times", 1) - 1
            _stats["faults"] += 1
            return dict(fault)
    return None


def _control(environ, start_response):
    method = environ["REQUEST_METHOD"]
    path = environ["PATH_INFO"]
    if path == "/__emulator/faults" and method == "POST":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        fault = json.loads(environ["wsgi.input"].read(length) or b"{}")
        with _state:
            _faults.append(fault)
        return _respond(start_response, 200, {"ok": True})
    if path == "/__emulator/faults" and method == "DELETE":
        access_key = parse_qs(environ.get("QUERY_STRING", "")).get("accessKey", [""])[0]
        with _state:
            _faults[:] = [f for f in _faults if f.get("accessKey") != access_key]
        return _respond(start_response, 200, {"ok": True})
    if path == "/__emulator/calls" and method == "GET":
        access_key = parse_qs(environ.get("QUERY_STRING", "")).get("accessKey", [""])[0]
        with _state:
            return _respond(start_response, 200, dict(_calls.get(access_key, {})))
    if path == "/__emulator/stats" and method == "GET":
        with _state:
            return _respond(start_response, 200, dict(_stats))
    return _respond(start_response, 404, {"error": "unknown emulator control path"})


def _apply_to_moto(app, environ, start_response):
    with _apply:
        return list(app(environ, start_response))


def _run(app, environ, start_response, fault):
    """Hands the request to moto, unless a fault answers instead (or after it)."""
    if fault and fault.get("kind") == "delay":
        time.sleep(float(fault.get("seconds", 4)))
        fault = None
    if fault and fault.get("kind", "error") == "error":
        return _aws_error(start_response, fault.get("status", 500), fault.get("code", "InternalServerError"), "injected fault")
    if fault:  # "commit": apply, then lose the answer
        _apply_to_moto(app, environ, lambda *args, **kwargs: None)
        return _aws_error(start_response, fault.get("status", 500), fault.get("code", "InternalServerError"), "injected fault")
    return _apply_to_moto(app, environ, start_response)


def _hold(table, ids):
    for item in ids:
        table[item] = table.get(item, 0) + 1


def _release(table, ids):
    for item in ids:
        table[item] -= 1
        if not table[item]:
            del table[item]


def _transact(app, environ, start_response, request, body, region, fault):
    _count("transactions")
    token = request.get("ClientRequestToken")
    digest = hashlib.sha256(json.dumps(request.get("TransactItems"), sort_keys=True).encode()).hexdigest()
    now = time.monotonic()
    with _state:
        if not token:
            _stats["transactionsWithoutToken"] += 1
        remembered = _tokens.get(token) if token else None
        if remembered and remembered[1] > now:
            if remembered[0] != digest:
                return _aws_error(start_response, 400, "IdempotentParameterMismatchException", "token reused with other parameters")
            _stats["idempotentReplays"] += 1
            return _respond(start_response, 200, remembered[2])
        ids = _transaction_items(request, region)
        busy = [item in _in_transaction or item in _in_write for item in ids]
        if any(busy):
            _stats["transactionConflicts"] += 1
            reasons = [
                {"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}
                if b
                else {"Code": "None"}
                for b in busy
            ]
            return _aws_error(
                start_response,
                400,
                "TransactionCanceledException",
                "Transaction cancelled, please refer cancellation reasons for specific reasons "
                f"[{', '.join(r['Code'] for r in reasons)}]",
                {"CancellationReasons": reasons},
            )
        _hold(_in_transaction, ids)
    # The items are in progress for the hold, as on DynamoDB; the wait for moto's one
    # request at a time (an artefact of the emulator, longer under load) is not held.
    try:
        time.sleep(TRANSACTION_HOLD_SECONDS)
    finally:
        with _state:
            _release(_in_transaction, ids)
    status = {}

    def capture(status_line, headers, exc_info=None):
        status["line"] = status_line
        return start_response(status_line, headers, exc_info)

    environ["wsgi.input"] = _Replay(body)
    out = _run(app, environ, capture, fault)
    committed = status.get("line", "").startswith("200") or (fault and fault.get("kind") == "commit")
    if token and committed:
        with _state:
            _tokens[token] = (digest, now + IDEMPOTENCY_WINDOW_SECONDS, {})
    return out


def _single_write(app, environ, start_response, operation, request, body, region, fault):
    item = _single_item(operation, request, region)

    def refused():
        _stats["writeConflicts"] += 1
        return _aws_error(start_response, 400, "TransactionConflictException", "Transaction is ongoing for the item")

    with _state:
        if item in _in_transaction:
            return refused()
    if fault and fault.get("kind") == "delay":
        time.sleep(float(fault.get("seconds", 4)))
        fault = None
    if fault:
        return _run(app, environ, start_response, fault)
    environ["wsgi.input"] = _Replay(body)
    with _apply:
        # In progress while moto applies it; a transaction that began meanwhile wins.
        with _state:
            if item in _in_transaction:
                return refused()
            _hold(_in_write, [item])
        try:
            return list(app(environ, start_response))
        finally:
            with _state:
                _release(_in_write, [item])


class _Replay:
    """A request body that can be read again after it was parsed here."""

    def __init__(self, body):
        self._body = body
        self._at = 0

    def read(self, size=-1):
        if size is None or size < 0:
            size = len(self._body) - self._at
        chunk = self._body[self._at : self._at + size]
        self._at += len(chunk)
        return chunk

    def readline(self, size=-1):
        return self.read(size)


def strict(app):
    def handle(environ, start_response):
        if environ.get("PATH_INFO", "").startswith("/__emulator/"):
            return _control(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = _Replay(body)
        operation = _operation(environ)
        access_key, region = _signer(environ)
        with _state:
            calls = _calls.setdefault(access_key, {})
            calls[operation] = calls.get(operation, 0) + 1
        fault = _take_fault(access_key, operation)
        service, name = operation.split(":", 1)
        if service == "dynamodb" and (name == "TransactWriteItems" or name in SINGLE_WRITES):
            request = json.loads(body or b"{}")
            if name == "TransactWriteItems":
                return _transact(app, environ, start_response, request, body, region, fault)
            return _single_write(app, environ, start_response, name, request, body, region, fault)
        return _run(app, environ, start_response, fault)

    return handle


_run_simple = server.run_simple


def _run_strict(host, port, app, **options):
    _run_simple(host, port, strict(app), **options)


server.run_simple = _run_strict

if __name__ == "__main__":
    server.main(sys.argv[1:])
