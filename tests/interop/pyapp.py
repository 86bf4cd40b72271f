"""Python Celery app for interop tests (the "Celeriac producer -> Python worker" direction).

Configured from the environment so one module serves every test:
  BROKER_URL                 broker (required for a worker; e.g. redis://127.0.0.1:P/3)
  RESULT_BACKEND             result backend (optional: no backend when unset)
  RESULT_EXTENDED            "1"/"true" -> result_extended = True
  BROKER_TRANSPORT_OPTIONS   JSON object -> broker_transport_options
  TASK_QUEUE_MAX_PRIORITY    integer -> task_queue_max_priority (x-max-priority of the queues
                             this app declares on AMQP; unset/empty: none)

Tasks (names are explicit so they never depend on the module name):
  py.add(x, y)        -> x + y
  py.echo(value)      -> value
  py.fail(message)    raises ValueError(message)
  py.progress(steps, delay=0.05)  update_state PROGRESS {current, total} per step -> steps
  py.sleep(seconds)   -> seconds
  py.tsum(numbers)    -> sum(numbers) (a chord body)
  py.errback(task_id) old-style errback: records "old:<task_id>" in the ledger, returns task_id
  py.errback_new(request, exc, traceback)  new-style errback: records
                      "new:<request.id>:<type(exc).__name__>:<exc>" in the ledger
  py.replace_with_chain(x)  replaces itself by chain(py.add(x, 1), py.add(10))
  py.properties()     -> self.request.properties (the message's properties, as Celery sees them)
  py.add_to_chord(nums)  in a chord header: add_to_chord(add.s(n, n)) for each n -> 0
  py.add_chord_to_chord(nums)  in a chord header: add_to_chord(group(add.s(n, n) ...) | tsum.s()) -> 0
Ledger: LEDGER_URL (a Redis URL) list "canvas-ledger"; unset = no ledger.
Start a worker with `celery -A pyapp worker` from tests/interop (tests/helpers/pyworker.ts).
"""
import json
import os
import time

from celery import Celery

TRUE = {"1", "true", "yes", "on"}


def _config():
    conf = {
        "broker_url": os.environ.get("BROKER_URL", "redis://127.0.0.1:6379/0"),
        "result_backend": os.environ.get("RESULT_BACKEND") or None,
        "result_extended": os.environ.get("RESULT_EXTENDED", "").lower() in TRUE,
        "accept_content": ["json", "msgpack", "yaml"],
        "result_accept_content": ["json", "msgpack", "yaml"],
        "task_serializer": "json",
        "result_serializer": "json",
        # Tests start against servers that are already up; keep the 5.x warning quiet.
        "broker_connection_retry_on_startup": True,
        "enable_utc": True,
    }
    transport_options = os.environ.get("BROKER_TRANSPORT_OPTIONS")
    if transport_options:
        conf["broker_transport_options"] = json.loads(transport_options)
    # On AMQP a worker notices SIGTERM only between heartbeats (default 60 s, ~10 s in practice):
    # tests set a short one so Python workers stop in about 2 s.
    heartbeat = os.environ.get("BROKER_HEARTBEAT")
    if heartbeat:
        conf["broker_heartbeat"] = float(heartbeat)
    # JSON {"ca_certs": path, "cert_reqs": "required"} -> Celery's broker_use_ssl for amqps://.
    use_ssl = os.environ.get("BROKER_USE_SSL")
    if use_ssl:
        import ssl

        opts = json.loads(use_ssl)
        reqs = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}
        opts["cert_reqs"] = reqs[opts.get("cert_reqs", "required")]
        conf["broker_use_ssl"] = opts
    # Producers declare the queues they send to: they must ask for the same queue type.
    queue_type = os.environ.get("CREATE_MISSING_QUEUE_TYPE")
    if queue_type:
        conf["task_create_missing_queue_type"] = queue_type
    max_priority = os.environ.get("TASK_QUEUE_MAX_PRIORITY")
    if max_priority:
        conf["task_queue_max_priority"] = int(max_priority)
    return conf


app = Celery("pyapp")
app.conf.update(_config())


@app.task(name="py.add")
def add(x, y):
    return x + y


@app.task(name="py.echo")
def echo(value):
    return value


@app.task(name="py.fail")
def fail(message):
    raise ValueError(message)


@app.task(name="py.progress", bind=True)
def progress(self, steps, delay=0.05):
    for i in range(steps):
        self.update_state(state="PROGRESS", meta={"current": i + 1, "total": steps})
        time.sleep(delay)
    return steps


@app.task(name="py.properties", bind=True)
def properties(self):
    return self.request.properties


@app.task(name="py.sleep")
def sleep(seconds):
    time.sleep(seconds)
    return seconds


@app.task(name="py.tsum")
def tsum(numbers):
    return sum(numbers)


def _ledger(entry):
    url = os.environ.get("LEDGER_URL")
    if url:
        import redis

        redis.Redis.from_url(url).rpush("canvas-ledger", entry)


@app.task(name="py.errback")
def errback(task_id):
    _ledger("old:%s" % task_id)
    return task_id


@app.task(name="py.errback_new")
def errback_new(request, exc, traceback):
    _ledger("new:%s:%s:%s" % (request.id, type(exc).__name__, exc))


@app.task(name="py.replace_with_chain", bind=True)
def replace_with_chain(self, x):
    from celery import chain

    return self.replace(chain(add.s(x, 1), add.s(10)))


@app.task(name="py.add_to_chord", bind=True)
def add_to_chord(self, nums):
    for num in nums:
        self.add_to_chord(add.s(num, num))
    return 0


@app.task(name="py.add_chord_to_chord", bind=True)
def add_chord_to_chord(self, nums):
    from celery import group

    self.add_to_chord(group([add.s(num, num) for num in nums]) | tsum.s())
    return 0
