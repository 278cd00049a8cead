#!/usr/bin/python3
"""stallphase.py - what the event loop did during its long iterations.

Reads `perf script` output (stdin) of a recording of metastore-server with
the loop-iteration uprobe, the epoll return and CPU-time samples, and
prints, for each loop iteration longer than THRESHOLD_MS (default 10):
its wall time, how much of it the loop thread spent on a CPU by the
samples, whether it was switched out meanwhile, and where in a
100 ms cycle it started. An iteration with hardly any samples was not
work: the thread was waiting (for a CPU, a lock, the disk) or the whole
machine was stopped; iterations that all start at the same point of the
cycle are a CPU quota with a 100 ms period (bench/RESULTS.md, "The
machine's CPU quota").

Recording (a build with frame pointers gives readable stacks):

    make B=/tmp/fpb OPT="-O2 -g -fno-omit-frame-pointer"
    perf probe -x /tmp/fpb/metastore-server -a loopiter=on_prepare
    perf record -o perf.data -p SERVER_PID -F 4000 -g -e cpu-clock \\
        -e probe_metastore:loopiter -e syscalls:sys_exit_epoll_wait \\
        -e syscalls:sys_exit_epoll_pwait -e sched:sched_switch -- sleep 20
    perf script -i perf.data | bench/stallphase.py SERVER_PID [THRESHOLD_MS [HZ]]

The loop thread's id is the server's pid. One iteration runs from the
return of epoll_wait to the next prepare callback, as the server's
metastore_loop_busy_seconds counts it.

Exit status: 0; 1 when the input holds no loop-iteration events of that
thread; 2 on a bad argument.
"""
import collections
import re
import signal
import sys

HEADER = re.compile(
    r'^\s*(.+?)\s+(\d+)\s+(?:\[(\d+)\]\s+)?([\d.]+):\s+(?:\d+\s+)?(\S+):\s*(.*)$')
SAMPLE_HZ = 4000  # perf record -F


def caller(frames):
    """The user-space function a switch-out came from, if it went through a
    system call; else the innermost frame below the scheduler."""
    for i, f in enumerate(frames):
        if f.startswith('entry_SYSCALL') and i + 1 < len(frames):
            return frames[i + 1]
    rest = [f for f in frames if 'schedule' not in f]
    return rest[0] if rest else '?'


def is_iter(ev):
    return 'loopiter' in ev or 'on_prepare' in ev


def events(stream, tid):
    """(time, event, trace, [frames]) of thread tid, in time order."""
    out, cur = [], None
    for line in stream:
        if not line.strip():
            continue
        m = None if line.startswith('\t') else HEADER.match(line)
        if m:
            if cur and cur[0] == tid:
                out.append(cur[1:])
            _, t, _, ts, ev, trace = m.groups()
            cur = [int(t), float(ts), ev, trace, []]
        elif cur is not None:
            parts = line.strip().split(None, 1)
            if len(parts) == 2 and '[unknown]' not in parts[1]:
                cur[4].append(parts[1].split('+')[0].split(' (')[0])
    if cur and cur[0] == tid:
        out.append(cur[1:])
    out.sort(key=lambda e: e[0])
    return out


def main():
    if len(sys.argv) < 2 or sys.argv[1] in ('-h', '--help'):
        sys.stdout.write(__doc__)
        return 0 if len(sys.argv) > 1 else 2
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    try:
        tid = int(sys.argv[1])
        threshold = float(sys.argv[2]) / 1e3 if len(sys.argv) > 2 else 0.010
        hz = int(sys.argv[3]) if len(sys.argv) > 3 else SAMPLE_HZ
        if tid <= 0 or threshold <= 0 or hz <= 0:
            raise ValueError
    except ValueError:
        sys.stderr.write('stallphase: SERVER_PID, THRESHOLD_MS and HZ must be '
                         'positive numbers (see --help)\n')
        return 2
    evs = events(sys.stdin, tid)
    if not any(is_iter(e[1]) for e in evs):
        sys.stderr.write('stallphase: no loop-iteration probe events for '
                         'thread %d in the input\n' % tid)
        return 1
    start, n_iter, long_iters = None, 0, []
    for i, (ts, ev, _, _) in enumerate(evs):
        if ev.startswith('syscalls:sys_exit_epoll_') and 'ctl' not in ev:
            start = i
        elif is_iter(ev) and start is not None:
            n_iter += 1
            if ts - evs[start][0] > threshold:
                long_iters.append((start, i))
            start = None
    phases = collections.Counter()
    worked = skipped = 0
    print('%d loop iterations, %d over %.1f ms' %
          (n_iter, len(long_iters), threshold * 1e3))
    print('%-16s %8s %10s %8s %s' %
          ('start (s)', 'wall ms', 'on-CPU ms', 'phase', 'switched out / top of the stack'))
    for a, b in long_iters:
        wall = (evs[b][0] - evs[a][0]) * 1e3
        stacks = collections.Counter()
        samples, outs = 0, []
        for ts, ev, trace, frames in evs[a:b]:
            if ev.startswith('cpu-clock'):
                samples += 1
                stacks[' < '.join(frames[:5])] += 1
            elif ev == 'sched:sched_switch' and 'prev_pid=%d ' % tid in trace:
                state = trace.split('prev_state=')[1].split()[0]
                outs.append(state + ' in ' + caller(frames))
        if any(' in epoll_' in o for o in outs):
            skipped += 1  # an epoll return went unrecorded: not one iteration
            continue
        cpu = samples * 1e3 / hz
        if cpu >= wall / 2:
            worked += 1
        phase = int(evs[a][0] * 1e3) % 100
        phases[phase // 10] += 1
        what = '; '.join(outs) or '-'
        if stacks:
            what += ' | ' + stacks.most_common(1)[0][0][:120]
        print('%-16.6f %8.2f %10.2f %5d ms %s' % (evs[a][0], wall, cpu, phase, what))
    if skipped:
        print('left out: %d spans with a sleep in epoll inside (its '
              'return was not recorded)' % skipped)
    if len(long_iters) > skipped:
        print('on a CPU for at least half their wall time: %d of %d' %
              (worked, len(long_iters) - skipped))
        print('start within the 100 ms cycle, by tenths: ' +
              ' '.join('%d-%d ms: %d' % (k * 10, k * 10 + 9, phases[k])
                       for k in range(10) if phases[k]))
    return 0


if __name__ == '__main__':
    sys.exit(main())
