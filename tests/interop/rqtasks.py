"""Functions a Python `rq worker` runs in the rq interop tests (TS-enqueued jobs)."""


def add(a, b):
    return a + b


def echo(*args, **kwargs):
    return {'args': list(args), 'kwargs': kwargs}


def fail(message):
    raise TypeError(message)


def noop():
    return None
