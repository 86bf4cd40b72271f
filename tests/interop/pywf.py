"""sca-rhythm WorkflowTask steps for tests/integration/workflows.test.ts (twins of
tests/interop/workflow_tasks.ts), run by `celery -A pywf worker` from .venv-interop (Celery 5.7,
sca-rhythm --no-deps) or .venv-sca (Celery 5.2.7, as Bioloop runs it). BROKER_URL and
RESULT_BACKEND (mongodb://) from the environment; result_extended as Bioloop sets it (resume
reads a step's args from its task document).
  pywf.step(value)   -> [value + '>' + step]
  pywf.slow(value)   progress until the file kwargs['release'] exists (max 60 s), then as pywf.step
  pywf.flaky(value)  raises ValueError while kwargs['fail_if_exists'] exists, else as pywf.step
"""
import os
import time

from celery import Celery
from sca_rhythm import WorkflowTask
from sca_rhythm.progress import Progress

app = Celery("pywf")
app.conf.update(
    broker_url=os.environ["BROKER_URL"],
    result_backend=os.environ["RESULT_BACKEND"],
    result_extended=True,
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    broker_connection_retry_on_startup=True,
    enable_utc=True,
)


def _next(value, kwargs):
    return [f"{value}>{kwargs['step']}"]


@app.task(base=WorkflowTask, bind=True, name="pywf.step")
def step(self, value, **kwargs):
    return _next(value, kwargs)


@app.task(base=WorkflowTask, bind=True, name="pywf.slow")
def slow(self, value, **kwargs):
    progress = Progress(celery_task=self, name="slow", units="ticks", total=300, throttle_time=0.2)
    for tick in range(300):
        if os.path.exists(kwargs["release"]):
            break
        progress.update(tick)
        time.sleep(0.2)
    return _next(value, kwargs)


@app.task(base=WorkflowTask, bind=True, name="pywf.flaky")
def flaky(self, value, **kwargs):
    if os.path.exists(kwargs["fail_if_exists"]):
        raise ValueError(f"flaky step failed: {kwargs['fail_if_exists']} exists")
    return _next(value, kwargs)
