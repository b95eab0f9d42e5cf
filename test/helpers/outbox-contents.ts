/** Reads an outbox directory the way a restart would, to check what is on disk (tests only). */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ACKS_FILE, listSegments, nodeOutboxFs, parseAcks } from '../../exporters/delivery/outbox-files.ts';

/** The sink directories under an outbox base directory. */
export function sinkDirs(base: string): string[] {
  if (!existsSync(base)) return [];
  return readdirSync(base).map((n) => join(base, n)).filter((p) => statSync(p).isDirectory());
}

/** Ids of the events pending in an outbox (a sink directory, or a base directory with one sink), in log order. */
export function pendingIds(dir: string): string[] {
  const sinkDir = existsSync(join(dir, ACKS_FILE)) || readdirSync(dir).some((f) => f.startsWith('seg-')) ? dir : sinkDirs(dir)[0];
  if (!sinkDir) return [];
  const acksPath = join(sinkDir, ACKS_FILE);
  const acked = new Set(existsSync(acksPath) ? parseAcks(readFileSync(acksPath, 'utf8')) : []);
  const ids: string[] = [];
  for (const { name } of listSegments(nodeOutboxFs, sinkDir)) {
    for (const line of readFileSync(join(sinkDir, name), 'utf8').split('\n')) {
      try {
        const r = JSON.parse(line) as { seq: number; event: { id: string } };
        if (!acked.has(r.seq)) ids.push(r.event.id);
      } catch {
        // a torn line
      }
    }
  }
  return ids;
}
