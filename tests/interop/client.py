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
  {"op": "send_list", "task", "args_list": [[..], [..], ..], "kwargs", "options"}
    -> {"ids": [..]}: one task per args_list entry, all on one producer (one connection),
       in order; ids[i] is the task sent with args_list[i].
  {"op": "result", "id", "timeout": seconds (20)}
    -> {"id", "state", "ready", "result", "info", "traceback"}; waits up to timeout, never raises
  {"op": "state", "id"} -> {"id", "state", "info"}; no waiting
  {"op": "get", "id", "timeout": seconds (20)}
    -> {"id", "state", "result", "t_ready", "exc_type", "exc_module", "exc_message", "exc_args",
        "exc_mro"}: .get() with propagate; t_ready is time.time() when it returned; exc_mro
       lists "module.Class" for every class of the raised exception (issubclass checks).
  {"op": "watch", "id", "timeout": seconds (20), "interval": seconds (0.01)}
    -> {"id", "states": [{"state", "info", "t"}], "state", "result"}: polls state/info until
       ready (or timeout); states lists each change of (state, info), in order.
  {"op": "batch", "commands": [command, ...]}
    -> {"results": [{"t0", "t1", "out"}]}: runs the commands in order in this one process;
       t0/t1 are time.time() before/after each. A "send" command in a batch may carry
       "eta_in": seconds, which sets options.eta to now (UTC) + seconds just before sending.
  {"op": "canvas_dump", "spec": canvas spec (canvas_spec.py), "args": [..], "kwargs": {..},
   "options": {..}}
    -> {"messages": [{"headers", "body", "properties", "routing_key", "exchange"}], "result": tuple}
       applies the canvas on an in-memory broker (BROKER_URL is ignored) and returns every message
       it published, JSON-decoded, in order; the result tuple is that of the returned result.
  {"op": "canvas_run", "spec", "args", "kwargs", "options", "timeout": seconds (30)}
    -> {"id", "state", "result", "exc_type", "exc_message", "tuple", "children": [[id, state,
       result], ...]}: applies the canvas and waits for its result (a list for groups); children
       are the states of a GroupResult's members (empty otherwise). When apply_async itself
       raises, "apply_error" is true and exc_* describe that error. "wait": false returns right
       after sending (id and tuple only), e.g. to queue canvases before any worker starts.
To add an op: write op_<name>(cmd) returning a dict, and add it to OPS.
"""
import base64
import datetime
import json
import sys
import time

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


def op_send_list(cmd):
    ids = []
    with app.producer_or_acquire() as producer:
        for args in cmd["args_list"]:
            ids.append(_send(dict(cmd, args=args), producer).id)
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


def op_get(cmd):
    res = app.AsyncResult(cmd["id"])
    out = {"id": res.id, "state": None, "result": None, "t_ready": None, "exc_type": None,
           "exc_module": None, "exc_message": None, "exc_args": None, "exc_mro": None}
    try:
        out["result"] = jsonable(res.get(timeout=cmd.get("timeout", 20)))
    except Exception as exc:  # the remote exception re-raised by .get(), or a timeout
        out["exc_type"] = type(exc).__name__
        out["exc_module"] = type(exc).__module__
        out["exc_message"] = str(exc)
        out["exc_args"] = jsonable(list(exc.args))
        out["exc_mro"] = ["%s.%s" % (c.__module__, c.__name__) for c in type(exc).__mro__]
    out["t_ready"] = time.time()
    out["state"] = res.state
    return out


def op_watch(cmd):
    res = app.AsyncResult(cmd["id"])
    deadline = time.time() + cmd.get("timeout", 20)
    interval = cmd.get("interval", 0.01)
    states = []
    def snapshot():
        # One meta read for both: res.state then res.info would read twice (rpc:// drains its
        # reply queue on each read), and could pair PROGRESS with the final result.
        meta = res._get_task_meta()
        return meta["status"], jsonable(meta["result"])

    while True:
        state, info = snapshot()
        if not states or (states[-1]["state"], states[-1]["info"]) != (state, info):
            states.append({"state": state, "info": info, "t": time.time()})
        if res.ready() or time.time() > deadline:
            break
        time.sleep(interval)
    # ready() polls again: the state it saw may be newer than the last one recorded.
    final, info = snapshot()
    if (states[-1]["state"], states[-1]["info"]) != (final, info):
        states.append({"state": final, "info": info, "t": time.time()})
    return {"id": res.id, "states": states, "state": final, "result": jsonable(res.result)}


def op_batch(cmd):
    results = []
    for sub in cmd["commands"]:
        sub = dict(sub)
        if sub.get("eta_in") is not None:
            options = dict(sub.get("options") or {})
            options["eta"] = (datetime.datetime.now(datetime.timezone.utc)
                              + datetime.timedelta(seconds=float(sub.pop("eta_in")))).isoformat()
            sub["options"] = options
        op = OPS[sub["op"]]
        t0 = time.time()
        out = op(sub)
        results.append({"t0": t0, "t1": time.time(), "out": out})
    return {"results": results}


def op_canvas_dump(cmd):
    from celery import signals
    from kombu.utils.json import dumps, loads

    from canvas_spec import build

    app.conf.broker_url = "memory://"
    published = []

    def record(sender=None, body=None, exchange=None, routing_key=None, headers=None,
               properties=None, **_):
        published.append({"headers": loads(dumps(headers)), "body": loads(dumps(body)),
                          "properties": loads(dumps(properties or {})),
                          "routing_key": routing_key, "exchange": exchange})

    signals.before_task_publish.connect(record, weak=False)
    try:
        sig = build(cmd["spec"], app)
        res = sig.apply_async(cmd.get("args") or (), cmd.get("kwargs") or {}, **(cmd.get("options") or {}))
    finally:
        signals.before_task_publish.disconnect(record)
    return {"messages": published, "result": jsonable(res.as_tuple())}


def op_canvas_run(cmd):
    from canvas_spec import build

    sig = build(cmd["spec"], app)
    try:
        res = sig.apply_async(cmd.get("args") or (), cmd.get("kwargs") or {}, **(cmd.get("options") or {}))
    except Exception as exc:  # refused before sending (e.g. a chord on rpc://)
        return {"id": None, "state": None, "result": None, "exc_type": type(exc).__name__,
                "exc_message": str(exc), "tuple": None, "children": [], "apply_error": True}
    out = {"id": res.id, "state": None, "result": None, "exc_type": None, "exc_message": None,
           "tuple": jsonable(res.as_tuple()), "children": []}
    if cmd.get("wait") is False:
        return out
    try:
        out["result"] = jsonable(res.get(timeout=cmd.get("timeout", 30)))
    except Exception as exc:  # the remote exception re-raised by .get(), or a timeout
        out["exc_type"] = type(exc).__name__
        out["exc_message"] = str(exc)
    out["state"] = getattr(res, "state", None) if not hasattr(res, "results") else None
    for member in getattr(res, "results", None) or []:
        out["children"].append([member.id, member.state, jsonable(member.result)])
    return out


OPS = {
    "send": op_send,
    "send_many": op_send_many,
    "send_list": op_send_list,
    "result": op_result,
    "state": op_state,
    "get": op_get,
    "watch": op_watch,
    "batch": op_batch,
    "canvas_dump": op_canvas_dump,
    "canvas_run": op_canvas_run,
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
