/** Celeriac as an RQ worker and producer (Python rq 2.x's Redis layout, JSONSerializer jobs). */
export { RqWorker, type RqWorkerOptions, type RqLogger } from './worker';
export { enqueueRq, actiniaQueue, type RqEnqueueOptions, type ActiniaQueueChoice } from './producer';
export { rqWorkerMode } from './mode';
export { maintainQueues, MAINTENANCE_INTERVAL } from './maintenance';
export { rqFleetSource } from './fleet';
