"""Python rq 2.x side of the rq interop tests: JSON {"url", "ops": [...]} on stdin, one JSON list
of answers on stdout. Every read goes through rq's own API (Job.fetch, registries, Worker.all)."""
import json
import sys
import time

from redis import Redis
from rq import Queue, Retry, SimpleWorker, Worker
from rq.command import send_kill_horse_command, send_shutdown_command, send_stop_job_command
from rq.job import Dependency, Job
from rq.registry import (DeferredJobRegistry, FailedJobRegistry, FinishedJobRegistry,
                         ScheduledJobRegistry, StartedJobRegistry)
from rq.results import Result
from rq.serializers import JSONSerializer
from rq.utils import current_timestamp


_answers = []


def _ref(value):
    """'$N' names the answer of op N of this request (a job id enqueued just before)."""
    return _answers[int(value[1:])] if isinstance(value, str) and value.startswith('$') else value


def queue(r, op):
    return Queue(op.get('queue', 'default'), connection=r, serializer=None if op.get('pickle') else JSONSerializer)


def enqueue(r, op):
    kw = {k: op[k] for k in ('job_id', 'result_ttl', 'failure_ttl', 'at_front', 'ttl') if k in op}
    if 'timeout' in op:
        kw['job_timeout'] = op['timeout']
    if 'retry' in op:
        kw['retry'] = Retry(max=op['retry']['max'], interval=op['retry'].get('interval', 0))
    if 'depends_on' in op:
        kw['depends_on'] = Dependency(jobs=[_ref(d) for d in op['depends_on']], allow_failure=op.get('allow_failure', False))
    return queue(r, op).enqueue(op['func'], *op.get('args', []), **op.get('kwargs', {}), **kw).id


def job(r, op):
    j = Job.fetch(_ref(op['id']), connection=r, serializer=JSONSerializer)
    latest = j.latest_result()
    return {
        'status': j.get_status().value,
        'return_value': j.return_value(),
        'exc_string': latest.exc_string if latest else None,
        'exc_info': j._exc_info,
        'result_types': [res.type.name for res in Result.all(j, serializer=JSONSerializer)],
        'worker_name': j.worker_name,
        'started': j.started_at is not None,
        'ended': j.ended_at is not None,
        'retries_left': j.retries_left,
        'ttl': r.ttl(j.key),
        'results_ttl': r.ttl(Result.get_key(j.id)),
    }


def wait(r, op):
    deadline = time.time() + op.get('timeout', 60)
    while True:
        status = Job.fetch(_ref(op['id']), connection=r, serializer=JSONSerializer).get_status(refresh=True).value
        if status in op['statuses']:
            return status
        if time.time() > deadline:
            raise SystemExit(f'job {op["id"]} still {status}, wanted {op["statuses"]}')
        time.sleep(0.1)


def registries(r, op):
    q = queue(r, op)
    return {
        'queued': q.job_ids,
        'started': StartedJobRegistry(queue=q).get_job_ids(cleanup=False),
        'finished': FinishedJobRegistry(queue=q).get_job_ids(),
        'failed': FailedJobRegistry(queue=q).get_job_ids(),
        'deferred': DeferredJobRegistry(queue=q).get_job_ids(),
        'scheduled': ScheduledJobRegistry(queue=q).get_job_ids(),
    }


def workers(r, op):
    found = Worker.all(queue=queue(r, op)) if 'queue' in op else Worker.all(connection=r)
    return [{
        'name': w.name, 'state': w.get_state(), 'queues': w.queue_names(), 'pid': w.pid,
        'hostname': w.hostname, 'current_job': w.get_current_job_id(), 'successful': w.successful_job_count,
        'failed': w.failed_job_count, 'working_time': w.total_working_time, 'ttl': r.ttl(w.key),
        'birth': w.birth_date is not None, 'last_heartbeat': w.last_heartbeat is not None,
    } for w in found]


def cleanup(r, op):
    StartedJobRegistry(queue=queue(r, op)).cleanup(timestamp=current_timestamp() + op.get('ahead', 0))


def work(r, op):
    w = SimpleWorker([queue(r, {'queue': q}) for q in op['queues']], connection=r, serializer=JSONSerializer)
    return w.work(burst=True)


OPS = {
    'enqueue': enqueue, 'job': job, 'wait': wait, 'registries': registries, 'workers': workers,
    'cleanup': cleanup, 'work': work,
    'shutdown': lambda r, op: send_shutdown_command(r, op['name']),
    'kill_horse': lambda r, op: send_kill_horse_command(r, op['name']),
    'stop_job': lambda r, op: send_stop_job_command(r, op['id'], serializer=JSONSerializer),
    'suspend': lambda r, op: r.set('rq:suspended', 1) and None,
    'resume': lambda r, op: r.delete('rq:suspended') and None,
}

if __name__ == '__main__':
    req = json.load(sys.stdin)
    conn = Redis.from_url(req['url'])
    for op in req['ops']:
        _answers.append(OPS[op['op']](conn, op))
    print(json.dumps(_answers))
