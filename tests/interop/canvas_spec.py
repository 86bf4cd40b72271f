"""Build a Celery canvas from a JSON spec (the same spec tests/helpers/canvasSpec.ts builds in TS).

  {"sig": name, "args": [], "kwargs": {}, "options": {}, "immutable": false,
   "link": [spec], "link_error": [spec]}       a signature (link/link_error applied in order)
  {"chain": [spec, ...], "link": [...], "link_error": [...]}   chain(...) (folded as Celery does)
  {"group": [spec, ...], "options": {}}        group(...)
  {"chord": [spec, ...], "body": spec, "options": {}}   chord(header, body)
  {"starmap": name, "it": [[..], ..]}  {"map": name, "it": [..]}  {"chunks": name, "it": [[..]], "n": k}
"""
from celery import chain, chord, group, signature
from celery.canvas import chunks, xmap, xstarmap


def build(spec, app):
    if "sig" in spec:
        sig = signature(spec["sig"], args=spec.get("args") or (), kwargs=spec.get("kwargs") or {},
                        options=spec.get("options") or {}, immutable=spec.get("immutable", False), app=app)
    elif "chain" in spec:
        sig = chain(*[build(s, app) for s in spec["chain"]])
    elif "group" in spec:
        sig = group([build(s, app) for s in spec["group"]], app=app, **(spec.get("options") or {}))
    elif "chord" in spec:
        sig = chord([build(s, app) for s in spec["chord"]], build(spec["body"], app), app=app,
                    **(spec.get("options") or {}))
    elif "starmap" in spec:
        sig = xstarmap(signature(spec["starmap"], app=app), spec["it"], app=app)
    elif "map" in spec:
        sig = xmap(signature(spec["map"], app=app), spec["it"], app=app)
    elif "chunks" in spec:
        sig = chunks(signature(spec["chunks"], app=app), spec["it"], spec["n"], app=app)
    else:
        raise ValueError("bad canvas spec %r" % (spec,))
    for cb in spec.get("link") or []:
        sig.link(build(cb, app))
    for eb in spec.get("link_error") or []:
        sig.link_error(build(eb, app))
    return sig
