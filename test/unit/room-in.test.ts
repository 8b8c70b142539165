import { createWriteStream } from 'node:fs';
import { PassThrough } from 'node:stream';
import { roomIn } from '../../src/streams/room-in';

describe('roomIn', () => {
  it('fails with the stream\'s error when the disk is full, instead of waiting for a drain that never comes', async () => {
    const full = createWriteStream('/dev/full', { highWaterMark: 16 });
    full.on('error', () => undefined);
    const chunk = Buffer.alloc(1024, 'x');
    expect(full.write(chunk)).toBe(false);
    await expect(roomIn(full)).rejects.toThrow(/ENOSPC/);
    // And once it has failed, a later wait fails at once with the same cause.
    await expect(roomIn(full)).rejects.toThrow(/ENOSPC/);
  });

  it('fails when the stream is closed without an error, and resolves when it drains', async () => {
    const closed = new PassThrough({ highWaterMark: 4 });
    closed.write(Buffer.alloc(8));
    const waiting = roomIn(closed);
    closed.destroy();
    await expect(waiting).rejects.toThrow(/closed while it was being written/);

    const draining = new PassThrough({ highWaterMark: 4 });
    expect(draining.write(Buffer.alloc(8))).toBe(false);
    const room = roomIn(draining);
    draining.resume();
    await expect(room).resolves.toBeUndefined();
  });
});
