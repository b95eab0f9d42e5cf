/**
 * The time a delivery queue lives by: `now()` for budgets and back-off, timers for waking up.
 * Injectable, so a test can jump over a long outage (a 40 s or 5 min back-off schedule) while
 * the same queue code runs against real sockets; the system clock's timers never keep the
 * process alive.
 */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout(fn, ms) {
    const timer = setTimeout(fn, ms);
    timer.unref();
    return timer;
  },
  clearTimeout(handle) {
    clearTimeout(handle as NodeJS.Timeout);
  },
};
