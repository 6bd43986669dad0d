// An SMTP server in its own process (forked by smtp-sink.ts) that accepts every message and only counts:
// no parsing beyond the header block, nothing kept but the Message-IDs, nothing written to disk.
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import type { SinkStats } from './smtp-sink';

const stats: SinkStats = { messages: 0, distinct: 0, duplicates: 0, recipients: 0, bytes: 0, firstAt: null, lastAt: null, perTenth: [] };
// Messages accepted per 100 ms (epoch ms / 100), for rates over any window (a sending limit held "over any minute").
const tenths = new Map<number, number>();
// Docket derives a message's Message-ID from its idempotency key, so a re-sent message carries the same one.
const seen = new Set<string>();

const server = new SMTPServer({
  authOptional: true,
  disabledCommands: ['STARTTLS'],
  disableReverseLookup: true,
  logger: false,
  closeTimeout: 1000,
  onData(stream, session, callback) {
    let head = '';
    let inHead = true;
    stream.on('data', (chunk: Buffer) => {
      stats.bytes += chunk.length;
      if (!inHead) return;
      head += chunk.toString('latin1');
      const end = head.indexOf('\r\n\r\n');
      if (end >= 0) {
        head = head.slice(0, end);
        inHead = false;
      }
    });
    stream.on('error', callback);
    stream.on('end', () => {
      const unfolded = head.replace(/\r\n[ \t]+/g, ' ');
      const id = /^message-id:\s*(\S+)/im.exec(unfolded)?.[1] ?? `(none ${stats.messages})`;
      stats.messages++;
      stats.recipients += session.envelope.rcptTo.length;
      if (seen.has(id)) stats.duplicates++;
      else seen.add(id);
      stats.distinct = seen.size;
      stats.lastAt = Date.now();
      stats.firstAt ??= stats.lastAt;
      const tenth = Math.floor(stats.lastAt / 100);
      tenths.set(tenth, (tenths.get(tenth) ?? 0) + 1);
      callback();
    });
  },
});

server.listen(0, '127.0.0.1', () => {
  process.send!({ type: 'listening', port: (server.server.address() as AddressInfo).port });
});
process.on('message', (m: { type: string }) => {
  if (m.type === 'stats') process.send!({ type: 'stats', stats: { ...stats, perTenth: [...tenths] } });
});
// The parent went away (or asked us to stop by disconnecting): close and leave.
process.on('disconnect', () => server.close(() => process.exit(0)));
