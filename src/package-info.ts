/**
 * This package's own package.json (name, version, optional peer packages), found by walking up
 * from this module: it sits one level above the sources in a checkout (src/) and two levels
 * above in the published package (dist/src/).
 */
import { readFileSync } from 'node:fs';

export interface PackageInfo {
  name: string;
  version: string;
  peerDependencies?: Record<string, string>;
}

let cached: PackageInfo | undefined;

export function packageInfo(): PackageInfo {
  if (cached) return cached;
  for (const up of ['../package.json', '../../package.json']) {
    try {
      const info = JSON.parse(readFileSync(new URL(up, import.meta.url), 'utf8')) as PackageInfo;
      if (info.name === 'cao-events') return (cached = info);
    } catch {
      // not at this level
    }
  }
  return (cached = { name: 'cao-events', version: 'unknown' });
}
