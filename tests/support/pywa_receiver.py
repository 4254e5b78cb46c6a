"""A webhook receiver built on pywa (PyPI `pywa`, by david-lev), a third-party WhatsApp Cloud API library.

It exists so the integration tests can prove that wabridge's `format: "meta"` listener deliveries are
accepted by real, independent Meta-webhook code: pywa checks `X-Hub-Signature-256` against the app secret
and parses the body into its typed updates, exactly as it would for a delivery from Meta itself.

usage: python3 pywa_receiver.py <port-file> <app_secret>
  Binds 127.0.0.1 on a free port and writes the port number to <port-file> (atomically) once listening.
  POST (any path): raw body + X-Hub-Signature-256 go to pywa's `webhook_update_validator` and then
                   `webhook_update_handler`; the reply is pywa's (200 ok; 401 no signature; 403 bad one;
                   400 non-JSON). Note pywa answers 200 even when it fails to build a typed update.
  GET /received:   JSON array, one object per accepted POST: {"class", "field", key fields...}. A delivery
                   no typed handler got is recorded as class "RawUpdate"; pywa's log warnings/errors
                   (e.g. "Failed to construct update ... (KeyError: 'contacts')") and Python warnings
                   (e.g. unknown enum values) raised while handling it are listed under "warnings".
Exits 0 on SIGTERM/SIGINT. No network calls: no token (so no Graph client), no callback_url.
"""
import json
import logging
import os
import signal
import sys
import threading
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from pywa import WhatsApp

KEY_FIELDS = ("id", "type", "status", "event", "new_status", "template_id", "template_name", "value", "category")
received: list[dict] = []
lock = threading.Lock()
local = threading.local()  # per request: .records (typed updates), .notes (warnings)


class NoteCollector(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage().strip().splitlines()[0]
        if record.exc_info and record.exc_info[1] is not None:
            text += f" ({type(record.exc_info[1]).__name__}: {record.exc_info[1]})"
        sys.stderr.write(f"pywa_receiver: {record.name}: {text}\n")
        if (notes := getattr(local, "notes", None)) is not None:
            notes.append(text)


logging.captureWarnings(True)
warnings.simplefilter("always")
for name in ("pywa", "py.warnings"):
    logging.getLogger(name).addHandler(NoteCollector(logging.WARNING))
    logging.getLogger(name).propagate = False


def on_typed(_: WhatsApp, update) -> None:
    rec = {"class": type(update).__name__, "field": getattr(getattr(update, "raw", None), "field", None)}
    for key in KEY_FIELDS:
        if (val := getattr(update, key, None)) is not None and not callable(val):
            rec[key] = str(val)
    local.records.append(rec)


def make_client(app_secret: str) -> WhatsApp:
    wa = WhatsApp(  # no phone_id/waba_id/token: nothing to filter on and no Graph API client at all
        app_secret=app_secret, validate_updates=True, filter_updates=False,
        skip_duplicate_updates=False,  # record every accepted POST, retries included
    )
    # One catch-all callback on every typed handler pywa has (Message, MessageStatus, CallConnect, ...).
    wa.add_handlers(*(handler(on_typed) for handler in WhatsApp._handlers_to_updates))
    return wa


class Handler(BaseHTTPRequestHandler):
    wa: WhatsApp

    def _reply(self, status: int, body: bytes, ctype: str = "text/plain") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path.split("?")[0] != "/received":
            return self._reply(404, b"not found")
        with lock:
            body = json.dumps(received).encode()
        self._reply(200, body, "application/json")

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        local.records, local.notes = [], []
        text, status = "Internal Server Error", 500
        try:
            rejected = self.wa.webhook_update_validator(raw, self.headers.get("X-Hub-Signature-256"))
            text, status = rejected or self.wa.webhook_update_handler(raw)
            if 200 <= status < 300:
                if not (recs := local.records):
                    try:
                        field = json.loads(raw)["entry"][0]["changes"][0]["field"]
                    except (ValueError, KeyError, IndexError, TypeError):
                        field = None
                    recs = [{"class": "RawUpdate", "field": field}]
                for rec in recs:
                    rec.update({"warnings": list(local.notes)} if local.notes else {})
                with lock:
                    received.extend(recs)
        finally:
            local.records = local.notes = None
            self._reply(status, str(text).encode())

    def log_message(self, fmt: str, *args) -> None:
        sys.stderr.write("pywa_receiver: " + (fmt % args) + "\n")


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit("usage: python3 pywa_receiver.py <port-file> <app_secret>")
    port_file, app_secret = sys.argv[1], sys.argv[2]
    Handler.wa = make_client(app_secret)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    stop = lambda *_: threading.Thread(target=httpd.shutdown, daemon=True).start()  # noqa: E731
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    with open(f"{port_file}.tmp", "w") as f:
        f.write(str(httpd.server_address[1]))
    os.replace(f"{port_file}.tmp", port_file)  # readers never see a half-written file
    try:
        httpd.serve_forever()
    finally:
        httpd.server_close()


if __name__ == "__main__":
    main()
