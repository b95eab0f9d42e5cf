/**
 * Real file-system faults for outbox tests: a small tmpfs (`mount -t tmpfs -o size=…`, needs
 * root) that can be filled up (ENOSPC) and remounted read-only (EROFS). Where mounting is not
 * allowed, `faultyFs()` injects the same errors at the outbox's one file-system seam (OutboxFs)
 * instead; tests say which they used.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { OutboxFs } from '../../exporters/delivery/outbox-files.ts';

export interface SmallDisk {
  /** The mount point. */
  dir: string;
  /** Fills the file system up: every further write that needs a new page fails with ENOSPC. */
  fill(): void;
  /** Frees what fill() took. */
  free(): void;
  readOnly(): void;
  writable(): void;
  close(): void;
}

let mountable: boolean | undefined;

/**
 * A tmpfs of `bytes` bytes, or undefined where mounting is not allowed (or
 * CAO_EVENTS_TEST_NO_MOUNT=1 asks to exercise the fs-seam fallback instead).
 */
export function smallDisk(bytes = 2 * 1024 * 1024): SmallDisk | undefined {
  if (mountable === false || process.platform !== 'linux' || process.env.CAO_EVENTS_TEST_NO_MOUNT === '1') return undefined;
  const dir = mkdtempSync(join(tmpdir(), 'cao-events-disk-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes}`, 'tmpfs', dir], { stdio: 'ignore' });
    mountable = true;
  } catch {
    mountable = false;
    rmSync(dir, { recursive: true, force: true });
    return undefined;
  }
  const filler = join(dir, 'filler');
  return {
    dir,
    fill() {
      const fd = fs.openSync(filler, 'a');
      try {
        for (const size of [1 << 16, 1 << 12, 1 << 8, 1]) {
          const chunk = Buffer.alloc(size, 0x78);
          for (;;) {
            try {
              fs.writeSync(fd, chunk);
            } catch {
              break;
            }
          }
        }
      } finally {
        fs.closeSync(fd);
      }
    },
    free() {
      rmSync(filler, { force: true });
    },
    readOnly() {
      execFileSync('mount', ['-o', 'remount,ro', dir], { stdio: 'ignore' });
    },
    writable() {
      execFileSync('mount', ['-o', 'remount,rw', dir], { stdio: 'ignore' });
    },
    close() {
      try {
        execFileSync('umount', ['-l', dir], { stdio: 'ignore' });
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

function errno(code: string, syscall: string): NodeJS.ErrnoException {
  const err = new Error(`${code}: simulated, ${syscall}`) as NodeJS.ErrnoException;
  err.code = code;
  err.syscall = syscall;
  return err;
}

export interface FaultyFs {
  fs: OutboxFs;
  /** From now on every write fails with this code (ENOSPC, EROFS, EIO); undefined: writes work again. */
  failWrites(code: string | undefined): void;
}

/** node:fs with injectable write failures at the outbox's file-system seam. */
export function faultyFs(): FaultyFs {
  let failing: string | undefined;
  const guard = <A extends unknown[], R>(name: string, fn: (...a: A) => R) => (...args: A): R => {
    if (failing) throw errno(failing, name);
    return fn(...args);
  };
  const writing = (flags: unknown): boolean => typeof flags === 'string' && /[wa+]/.test(flags);
  const seam: OutboxFs = {
    ...fs,
    mkdirSync: ((path: fs.PathLike, options?: fs.MakeDirectoryOptions) => {
      if (failing && !fs.existsSync(path)) throw errno(failing, 'mkdir');
      return fs.mkdirSync(path, options);
    }) as OutboxFs['mkdirSync'],
    openSync: ((path: fs.PathLike, flags?: fs.OpenMode, mode?: fs.Mode) => {
      if (failing && writing(flags)) throw errno(failing, 'open');
      return fs.openSync(path, flags ?? 'r', mode);
    }) as OutboxFs['openSync'],
    writeSync: guard('write', fs.writeSync) as OutboxFs['writeSync'],
    writeFileSync: guard('write', fs.writeFileSync) as OutboxFs['writeFileSync'],
    renameSync: guard('rename', fs.renameSync) as OutboxFs['renameSync'],
    ftruncateSync: guard('ftruncate', fs.ftruncateSync) as OutboxFs['ftruncateSync'],
  };
  return { fs: seam, failWrites: (code) => (failing = code) };
}
