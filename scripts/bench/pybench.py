"""Python side of `npm run bench`: one Celery app used as the Python worker, the producer and the
round-trip client, so every contender drains byte-for-byte the same kind of message.

Configured from the environment:
  BROKER_URL      broker (e.g. redis://127.0.0.1:P/0 or amqp://guest:guest@127.0.0.1:P/vhost)
  RESULT_BACKEND  result backend (e.g. redis://127.0.0.1:P/1, rpc://; empty: none)
  IGNORE_RESULT   "1": task_ignore_result=True (the worker stores and sends no results)

Tasks: demo.noop() -> None (the same name as Celeriac's demo task); for `--suite pools`,
bench.primes(bound) and bench.sha256(k), the same loops as scripts/bench/cpuTasks.ts.

Worker:   celery -A pybench worker ...            (cwd scripts/bench)
Enqueue:  python pybench.py enqueue N             N demo.noop messages, published in kombu
                                                  pipeline batches; prints {"n", "seconds"}
          python pybench.py enqueue N TASK ARGS   the same for task TASK with args ARGS (a JSON
                                                  list), e.g. enqueue 2000 bench.primes '[30000]'
Enqueue to RabbitMQ vhosts:
          python pybench.py enqueue-amqp N URL...
                                                  N demo.noop messages, each built once and
                                                  published to the `celery` queue of every URL
                                                  (byte-identical copies, same task ids); the
                                                  rpc:// reply queue is declared in each vhost;
                                                  prints {"n", "seconds", "reply_queue"}
Latency:  python pybench.py latency N WARMUP      N sequential apply_async().get() after WARMUP
                                                  uncounted ones; prints {"ms": [...]}
          python pybench.py latency-paired N WARMUP BLOCK BROKER,BACKEND...
                                                  the same against several idle workers at once,
                                                  one broker/backend pair each: WARMUP each, then
                                                  BLOCK round trips to each in turn until each has
                                                  N, so a slow moment of the machine falls on all
                                                  of them alike; prints {"ms": [[...], ...]} in
                                                  the order given
"""
import hashlib
import json
import os
import sys
import time

from celery import Celery

# Settings of every app here (worker, producer, round-trip clients; latency-paired makes one per
# worker), beside the two URLs.
APP_CONF = dict(
    accept_content=["json"],
    result_accept_content=["json"],
    task_serializer="json",
    result_serializer="json",
    broker_connection_retry_on_startup=True,
    enable_utc=True,
    task_ignore_result=os.environ.get("IGNORE_RESULT") == "1",
)

app = Celery("pybench")
app.conf.update(
    broker_url=os.environ.get("BROKER_URL", "redis://127.0.0.1:6379/0"),
    result_backend=os.environ.get("RESULT_BACKEND") or None,
    **APP_CONF,
)


@app.task(name="demo.noop")
def noop():
    return None


# The same bytes as cpuTasks.ts's buffer: i % 251 for i in 0..65535.
_SHA_BUFFER = bytes(i % 251 for i in range(65536))


def count_primes(bound):
    """Primes below `bound` by trial division: the loop cpuTasks.ts's countPrimes runs."""
    count = 0
    n = 2
    while n < bound:
        d = 2
        while d * d <= n and n % d != 0:
            d += 1
        if d * d > n:
            count += 1
        n += 1
    return count


@app.task(name="bench.primes")
def primes(bound):
    return count_primes(bound)


@app.task(name="bench.sha256")
def sha256(k):
    """sha256 of the fixed buffer, k times over (OpenSSL, as in Node); the last hex digest."""
    digest = ""
    for _ in range(k):
        digest = hashlib.sha256(_SHA_BUFFER).hexdigest()
    return digest


def enqueue(n, task="demo.noop", args=None):
    # send_task subscribes the *producer* to each task's result channel (RedisBackend.on_task_call)
    # so that a later .get() cannot miss the result. Nobody waits on these results and the process
    # exits right after, so skip the 20,000 SUBSCRIBEs: the messages themselves are unchanged.
    app.backend.on_task_call = lambda producer, task_id: None
    started = time.perf_counter()
    with app.producer_or_acquire() as producer:
        with producer.batch(max_size=1000):
            for _ in range(n):
                app.send_task(task, args=args, producer=producer)
    print(json.dumps({"n": n, "seconds": time.perf_counter() - started}), flush=True)


def enqueue_amqp(n, urls):
    """Publish each message once per vhost: Celery's send_task builds and publishes it on the
    first URL's channel, and the very same AMQP message (body, headers, properties: one
    amqp.Message object) is then published on every other URL's channel. No publisher confirms
    (py-amqp's default), no batching."""
    from kombu import Connection, Producer

    started = time.perf_counter()
    conns = [Connection(url) for url in urls]
    producers = [Producer(c.channel()) for c in conns]
    queue = app.amqp.queues[app.conf.task_default_queue]
    reply_queue = None
    for p in producers:
        # The `celery` queue (and its exchange and binding) as Celery declares it, in every vhost.
        queue(p.channel).declare()
        if app.conf.result_backend:
            # rpc:// replies go to this process's reply queue (app.thread_oid): declare it in
            # every vhost. It is not exclusive and, never consumed, it is not auto-deleted, so it
            # outlives this process and collects the results the workers send.
            binding = app.backend.binding(p.channel)
            binding.declare()
            reply_queue = binding.name
    # send_task would re-declare the reply queue for every message (the rpc Queue never caches
    # its declaration): it is declared above, so skip that round trip. Messages are unchanged.
    app.backend.on_task_call = lambda producer, task_id: None
    first = producers[0]
    others = [p.channel for p in producers[1:]]
    basic_publish = first.channel.basic_publish

    def tee(message, *args, **kwargs):
        result = basic_publish(message, *args, **kwargs)
        for channel in others:
            channel.basic_publish(message, *args, **kwargs)
        return result

    first.channel.basic_publish = tee
    for _ in range(n):
        app.send_task("demo.noop", producer=first)
    for c in conns:
        c.release()
    print(json.dumps({"n": n, "seconds": time.perf_counter() - started, "reply_queue": reply_queue}), flush=True)


def round_trip_ms(client):
    t0 = time.perf_counter()
    client.send_task("demo.noop").get(timeout=30)
    return (time.perf_counter() - t0) * 1000.0


def latency(n, warmup):
    samples = [round_trip_ms(app) for _ in range(warmup + n)][warmup:]
    print(json.dumps({"ms": samples}), flush=True)


def latency_paired(n, warmup, block, pairs):
    clients = []
    for pair in pairs:
        broker, backend = pair.split(",")
        client = Celery("pybench")
        client.conf.update(broker_url=broker, result_backend=backend, **APP_CONF)
        clients.append(client)
    for client in clients:
        for _ in range(warmup):
            round_trip_ms(client)
    samples = [[] for _ in clients]
    while len(samples[-1]) < n:
        for client, own in zip(clients, samples):
            own.extend(round_trip_ms(client) for _ in range(min(block, n - len(own))))
    print(json.dumps({"ms": samples}), flush=True)


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command == "enqueue":
        if len(sys.argv) > 3:
            enqueue(int(sys.argv[2]), sys.argv[3], json.loads(sys.argv[4]) if len(sys.argv) > 4 else [])
        else:
            enqueue(int(sys.argv[2]))
    elif command == "enqueue-amqp":
        enqueue_amqp(int(sys.argv[2]), sys.argv[3:])
    elif command == "latency":
        latency(int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 0)
    elif command == "latency-paired":
        latency_paired(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5:])
    else:
        sys.stderr.write(__doc__)
        sys.exit(2)
