#!/usr/bin/env python3
"""moto's server, answering one request at a time.

moto applies the items of a DynamoDB transaction one by one and, when one fails, rolls
back by restoring snapshots of whole tables taken when the transaction began. With the
server's request threads running in parallel, that is neither atomic nor isolated: other
requests see half-applied transactions, and a rollback can undo their writes. DynamoDB
itself gives transactions serializable isolation. Serializing requests gives the emulator
that property back; the tests still send their concurrent requests in parallel, and the
service's conditional writes still decide who wins.

    moto_serial.py -H 127.0.0.1 -p PORT
"""
import sys
import threading

import moto.server as server

_lock = threading.Lock()
_run_simple = server.run_simple


def _serialized(app):
    def handle(environ, start_response):
        with _lock:
            # Produce the whole response while holding the lock.
            return list(app(environ, start_response))

    return handle


def _run_serialized(host, port, app, **options):
    _run_simple(host, port, _serialized(app), **options)


server.run_simple = _run_serialized

if __name__ == "__main__":
    server.main(sys.argv[1:])
