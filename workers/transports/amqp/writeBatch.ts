/**
 * amqplib writes each frame to the socket on its own: at thousands of acks and results a second,
 * that is one syscall per frame. Corking the socket for the rest of the tick lets Node send every
 * frame written in it with one writev.
 */
import type { Socket } from 'node:net';
import type { ChannelModel } from 'amqplib';

export class WriteBatcher {
  private corked = false;

  constructor(private readonly socket: Socket | null) {}

  static of(model: ChannelModel): WriteBatcher {
    // amqplib keeps the socket on its Connection as `stream` (not in its typings).
    const stream = (model.connection as unknown as { stream?: Socket }).stream;
    return new WriteBatcher(stream && typeof stream.cork === 'function' ? stream : null);
  }

  /** Call before writing frames: they leave together once the current tick's work is done. */
  hold(): void {
    if (this.corked || !this.socket) return;
    this.corked = true;
    this.socket.cork();
    setImmediate(() => {
      this.corked = false;
      this.socket?.uncork();
    });
  }
}
