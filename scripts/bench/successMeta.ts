/**
 * The result document the bare reference consumers (rawconsumer.ts, rawredis.ts) send for each
 * task: Celery's SUCCESS meta for a task that returned None, as Python's AsyncResult reads it.
 */
export function successMeta(taskId: string): string {
  return `{"status": "SUCCESS", "result": null, "traceback": null, "children": [], "date_done": "${new Date().toISOString()}", "task_id": "${taskId}"}`;
}
