"""The S3 test server of the suite and the benchmarks: moto's S3 application, served by
waitress instead of moto_server's Werkzeug development server.

Werkzeug's development server answers every request with `Connection: close`, so each call
to the bucket opened a new TCP connection and a new server thread, a cost real S3 (and MinIO)
does not have: they keep connections alive and the SDK's pool reuses them. waitress keeps
them alive. The S3 behaviour is moto's either way (the same application object, the same
in-memory backend); only the HTTP front end differs.

moto_server's application serves every AWS service: for each request it works out which one
from the host and path, which costs about 180 `stat` calls and a third of the time of a small
GET. This server serves S3 alone (`s3_only`): requests go straight to moto's S3 application,
as with `moto_server s3`, and only `/moto-api` (moto's own controls) goes through the
dispatcher.

moto checks a conditional write's `If-Match` / `If-None-Match` and stores the object in two
steps with no lock between them, so two concurrent compare-and-swaps on one key could both
succeed; S3 decides them atomically, and the server's correctness rests on that. Requests that
change the bucket are therefore run one at a time (`one_write_at_a_time`); reads stay
concurrent. waitress has read a request's whole body before the application sees it, so the
lock is held only while moto processes it.

waitress 3.0.2 closes the connection after every 204 and 304 answer (it closes whenever it
has no `Content-Length` to send, and it never sends one for answers that cannot have a body);
`keep_alive_after_bodiless_answers` stops that, so a revalidation answered `304 Not Modified`
keeps its connection too, as it does on S3.

Usage: s3-test-server.py PORT  (listens on 127.0.0.1)
"""

import sys
import threading

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from waitress import serve, task


def keep_alive_after_bodiless_answers() -> None:
    """A 1xx, 204 or 304 answer has no body, so its end is known without a length: keep the
    connection open unless the client asked to close it."""
    build = task.Task.build_response_header
    close = task.Task.set_close_on_finish

    def build_response_header(self):
        self.bodiless_keep_alive = not self.has_body and not self.close_on_finish
        try:
            return build(self)
        finally:
            self.bodiless_keep_alive = False

    def set_close_on_finish(self):
        asked = self.request.headers.get("CONNECTION", "").lower() == "close"
        if getattr(self, "bodiless_keep_alive", False) and self.version == "1.1" and not asked:
            return
        close(self)

    task.Task.build_response_header = build_response_header
    task.Task.set_close_on_finish = set_close_on_finish


def one_write_at_a_time(app):
    """The WSGI application `app`, with every request but GET and HEAD run under one lock."""
    lock = threading.Lock()

    def serialized(environ, start_response):
        if environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
            return app(environ, start_response)
        with lock:
            # The body is produced here too, so that the write is complete when the lock is
            # released; the iterable is closed as WSGI requires (the list is what is served).
            result = app(environ, start_response)
            try:
                return list(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()

    return serialized


def s3_only():
    """moto's S3 application, with moto's own `/moto-api` routes through its dispatcher."""
    dispatcher = DomainDispatcherApplication(create_backend_app)
    s3 = create_backend_app("s3")

    def app(environ, start_response):
        if environ.get("PATH_INFO", "").startswith("/moto-api"):
            return dispatcher(environ, start_response)
        return s3(environ, start_response)

    return app


def main() -> None:
    port = int(sys.argv[1])
    keep_alive_after_bodiless_answers()
    app = one_write_at_a_time(s3_only())
    serve(
        app,
        host="127.0.0.1",
        port=port,
        # Concurrent requests (the suite runs clones, pushes and replicas side by side).
        threads=16,
        connection_limit=1000,
        # Single-request uploads below the server's multipart threshold, and then some.
        max_request_body_size=1 << 40,
        channel_timeout=300,
        _quiet=True,
    )


if __name__ == "__main__":
    main()
