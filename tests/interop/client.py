"""Python Celery producer/inspector CLI for interop tests (tests/helpers/python.ts: pyClient).

Reads ONE JSON command from stdin, prints ONE JSON line on stdout (anything else goes to
stderr). Broker and backend come from the environment exactly as for pyapp.py (BROKER_URL,
RESULT_BACKEND, RESULT_EXTENDED, BROKER_TRANSPORT_OPTIONS). An unexpected error exits 1
with a traceback on stderr.

Ops:
  {"op": "send", "task": "demo.add", "args": [..], "kwargs": {..},
   "options": {"countdown", "eta": iso8601, "expires": seconds|iso8601, "priority", "queue",
               "serializer": "json"|"msgpack"|"yaml", "ignore_result", "task_id", ...any other
               send_task option},
   "wait": bool, "timeout": seconds (20)}
    -> {"id", "state", "result", "exc_type", "exc_message"}
       result/exc_* only when wait; exc_* are set when .get() raised (exc_type is the
       exception's class name, e.g. "ValueError" or "TimeoutError").
  {"op": "send_many", <as send without wait>, "count": N} -> {"ids": [..]}
  {"op": "result", "id", "timeout": seconds (20)}
    -> {"id", "state", "ready", "result", "info", "traceback"}; waits up to timeout, never raises
  {"op": "state", "id"} -> {"id", "state", "info"}; no waiting
To add an op: write op_<name>(cmd) returning a dict, and add it to OPS.
"""
import base64
import datetime
import json
import sys

from celery.exceptions import TimeoutError as CeleryTimeout

from pyapp import app


def jsonable(value):
    """Makes task results, exceptions and metadata printable as JSON."""
    if isinstance(value, BaseException):
        return {"exc_type": type(value).__name__, "exc_message": str(value)}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [jsonable(v) for v in value]
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    if isinstance(value, bytes):
        return {"bytes_b64": base64.b64encode(value).decode("ascii")}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)


def _send_options(cmd):
    options = dict(cmd.get("options") or {})
    for key in ("eta", "expires"):
        if isinstance(options.get(key), str):
            options[key] = datetime.datetime.fromisoformat(options[key])
    return options


def _send(cmd, producer=None):
    return app.send_task(
        cmd["task"],
        args=cmd.get("args") or [],
        kwargs=cmd.get("kwargs") or {},
        producer=producer,
        **_send_options(cmd),
    )


def op_send(cmd):
    res = _send(cmd)
    out = {"id": res.id, "state": None, "result": None, "exc_type": None, "exc_message": None}
    if cmd.get("wait"):
        try:
            out["result"] = jsonable(res.get(timeout=cmd.get("timeout", 20)))
        except Exception as exc:  # the remote exception re-raised by .get(), or a timeout
            out["exc_type"] = type(exc).__name__
            out["exc_message"] = str(exc)
        out["state"] = res.state
    return out


def op_send_many(cmd):
    with app.producer_or_acquire() as producer:
        ids = [_send(cmd, producer).id for _ in range(int(cmd["count"]))]
    return {"ids": ids}


def op_result(cmd):
    res = app.AsyncResult(cmd["id"])
    try:
        res.get(timeout=cmd.get("timeout", 20), propagate=False)
    except CeleryTimeout:
        pass
    return {
        "id": res.id,
        "state": res.state,
        "ready": res.ready(),
        "result": jsonable(res.result),
        "info": jsonable(res.info),
        "traceback": res.traceback,
    }


def op_state(cmd):
    res = app.AsyncResult(cmd["id"])
    return {"id": res.id, "state": res.state, "info": jsonable(res.info)}


OPS = {
    "send": op_send,
    "send_many": op_send_many,
    "result": op_result,
    "state": op_state,
}


def main():
    cmd = json.loads(sys.stdin.read())
    op = OPS.get(cmd.get("op"))
    if op is None:
        sys.stderr.write("unknown op %r; known: %s\n" % (cmd.get("op"), ", ".join(sorted(OPS))))
        return 2
    out = op(cmd)
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
