"""sca-rhythm's Workflow from Python, for tests/integration/workflows.test.ts: reads ONE JSON
command on stdin, prints ONE JSON line (datetimes as str). Same environment as pywf.py.
  {"op": "create_start", "steps": [...], "name", "app_id", "args": [...]} -> {"id"}
  {"op": "view", "id"}    -> get_embellished_workflow(prev_task_runs=True) plus "_status"
  {"op": "pause", "id"}   -> Workflow.pause()
  {"op": "resume", "id"}  -> Workflow.resume()
  {"op": "info", "task_id"} -> {"state", "info"} of AsyncResult
"""
import json
import sys

from sca_rhythm import Workflow

from pywf import app

cmd = json.loads(sys.stdin.read())
op = cmd["op"]
if op == "create_start":
    wf = Workflow(app, steps=cmd["steps"], name=cmd["name"], app_id=cmd["app_id"])
    wf.start(*cmd["args"])
    out = {"id": wf.workflow["_id"]}
elif op == "view":
    wf = Workflow(app, workflow_id=cmd["id"])
    out = wf.get_embellished_workflow(prev_task_runs=True)
    out["_status"] = wf.workflow["_status"]
elif op == "pause":
    out = Workflow(app, workflow_id=cmd["id"]).pause()
elif op == "resume":
    out = Workflow(app, workflow_id=cmd["id"]).resume()
elif op == "info":
    res = app.AsyncResult(cmd["task_id"])
    out = {"state": res.state, "info": res.info}
else:
    raise SystemExit(f"unknown op {op}")
print(json.dumps(out, default=str))
