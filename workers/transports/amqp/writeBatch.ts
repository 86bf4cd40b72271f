/**
 * amqplib writes each frame to the socket on its own: at thousands of acks and results a second,
 * that is one write() syscall (and one TCP segment for RabbitMQ to take in) per frame. Its Mux
 * moves the frames queued on all channels to the socket in one pass per event-loop turn (from a
 * setImmediate); corking the socket for that pass sends them with one writev.
 *
 * An earlier version corked on ack/publish and uncorked from a setImmediate of its own. That one
 * ran before the Mux's (queued later, from the channel stream's 'readable'), so nothing was ever
 * batched: a profile showed one write per frame, 35% of the main thread with rpc:// results (#16).
 */
import type { Socket } from 'node:net';
import type { ChannelModel } from 'amqplib';

interface Muxer {
  _readIncoming?: () => void;
  celeriacCorked?: true;
}

/**
 * Wrap this connection's frame pass in cork/uncork. Reaches into amqplib's Connection (`stream`,
 * `muxer`: not in its typings); when they are not there, frames go out one by one as before.
 * Returns whether the writes are batched.
 */
export function batchFrameWrites(model: ChannelModel): boolean {
  const connection = model.connection as unknown as { stream?: Socket; muxer?: Muxer };
  const socket = connection.stream;
  const mux = connection.muxer;
  if (!socket || typeof socket.cork !== 'function' || !mux || typeof mux._readIncoming !== 'function') return false;
  if (mux.celeriacCorked) return true;
  const pass = mux._readIncoming;
  mux._readIncoming = function (this: Muxer): void {
    socket.cork();
    try {
      pass.call(this);
    } finally {
      socket.uncork();
    }
  };
  mux.celeriacCorked = true;
  return true;
}
