"""Python side of `npm run bench`: one Celery app used as the Python worker, the producer and the
round-trip client, so every contender drains byte-for-byte the same kind of message.

Configured from the environment:
  BROKER_URL      broker (e.g. redis://127.0.0.1:P/0)
  RESULT_BACKEND  result backend (e.g. redis://127.0.0.1:P/1)

Task: demo.noop() -> None (the same name as Celeriac's demo task).

Worker:   celery -A pybench worker ...            (cwd scripts/bench)
Enqueue:  python pybench.py enqueue N             N demo.noop messages, published in kombu
                                                  pipeline batches; prints {"n", "seconds"}
Latency:  python pybench.py latency N WARMUP      N sequential apply_async().get() after WARMUP
                                                  uncounted ones; prints {"ms": [...]}
"""
import json
import os
import sys
import time

from celery import Celery

app = Celery("pybench")
app.conf.update(
    broker_url=os.environ.get("BROKER_URL", "redis://127.0.0.1:6379/0"),
    result_backend=os.environ.get("RESULT_BACKEND") or None,
    accept_content=["json"],
    result_accept_content=["json"],
    task_serializer="json",
    result_serializer="json",
    broker_connection_retry_on_startup=True,
    enable_utc=True,
)


@app.task(name="demo.noop")
def noop():
    return None


def enqueue(n):
    # send_task subscribes the *producer* to each task's result channel (RedisBackend.on_task_call)
    # so that a later .get() cannot miss the result. Nobody waits on these results and the process
    # exits right after, so skip the 20,000 SUBSCRIBEs: the messages themselves are unchanged.
    app.backend.on_task_call = lambda producer, task_id: None
    started = time.perf_counter()
    with app.producer_or_acquire() as producer:
        with producer.batch(max_size=1000):
            for _ in range(n):
                app.send_task("demo.noop", producer=producer)
    print(json.dumps({"n": n, "seconds": time.perf_counter() - started}), flush=True)


def latency(n, warmup):
    samples = []
    for i in range(warmup + n):
        t0 = time.perf_counter()
        result = app.send_task("demo.noop")
        result.get(timeout=30)
        elapsed = (time.perf_counter() - t0) * 1000.0
        if i >= warmup:
            samples.append(elapsed)
    print(json.dumps({"ms": samples}), flush=True)


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command == "enqueue":
        enqueue(int(sys.argv[2]))
    elif command == "latency":
        latency(int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 0)
    else:
        sys.stderr.write(__doc__)
        sys.exit(2)
