#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""etcd_queue.py - a replicated work queue built on etcd 3.4, benchmarked end to end.

Starts its own fresh 3-member etcd cluster on 127.0.0.1 (etcd defaults: fsync on, heartbeat
100 ms, election 1000 ms), finds the leader, and sends all traffic to the leader's client URL
through etcd's HTTP/JSON gRPC gateway (/v3/kv/*, /v3/lease/*; keys and values base64).
P producer and C consumer processes (multiprocessing, one keep-alive http.client connection
each, closed loop: one request outstanding per process) run the queue "bench" for a warm-up,
then DURATION measured seconds. The pattern is the one DEngine's dqueue uses:

  enqueue(body, idempotency key K), one txn:
      if version(dq/bench/idem/K) == 0:
          put dq/bench/idem/K (attached to the producer's dedup lease, TTL 600 s, granted once)
          put dq/bench/m/<id> = body
  dequeue(visibility timeout V):
      grant a lease with TTL V (reused for the next attempt while no claim succeeded);
      range dq/bench/m/ sorted by CREATE revision ascending, limit 64  (FIFO = create order:
          etcd has no server-side sequence);
      range dq/bench/c/ keys_only (ids already claimed);
      for each unclaimed candidate, in order, one txn:
          if create_revision(dq/bench/c/<id>) == 0 and version(dq/bench/m/<id>) > 0:
              put dq/bench/c/<id> = consumer name, with the lease
          succeeded -> delivered (claim revision = the txn's header revision); else next candidate
          (counted as a conflict);
      nothing claimed -> sleep 5 ms and poll again. Consumers POLL etcd: a watch over the JSON
      gateway is a chunked stream, which this stdlib client keeps out of the picture.
  ack, one txn:
      if mod_revision(dq/bench/c/<id>) == claim revision:
          delete dq/bench/m/<id>, delete dq/bench/c/<id>
      then the claim lease is revoked (a separate request, /v3/lease/revoke).

Results (stdout):
  one '#' header line with the setup, then
  etcd-queue msgs_per_s=F enqueued_per_s=F acked=N conflicts=N errors=N p50_ms=F p99_ms=F
  etcd-queue-extra srv_cpu%=F cli_cpu%=F idle%=F requests_per_s=F backlog_end=N ...
where msgs_per_s = messages acked in the measured window (each one enqueued, dequeued and
acked) per second; enqueued_per_s = successful enqueues in the window per second; acked,
conflicts (failed claim txns) and errors (failed HTTP requests, non-200 answers, etcd
errors, acks whose claim was lost) count the window only; p50/p99 = latency of the messages
acked in the window, from the moment the producer had its enqueue answered to the moment the
consumer had its ack answered (both processes record CLOCK_MONOTONIC, which is system-wide
on Linux; the parent joins them by message id; the body also carries the enqueue send time
and the id, padded to --body bytes). srv_cpu% = user+system CPU of the 3 etcd members over
the window / wall time (200% = 2 cores fully busy), cli_cpu% the same for the producer and
consumer processes, idle% = whole-machine idle+iowait share. backlog_end = messages still in
the queue (dq/bench/m/) when the run stops.

Options:
  --producers N    producer processes (default 8, env PRODUCERS)
  --consumers N    consumer processes (default 8, env CONSUMERS)
  --duration S     measured seconds (default 10, env DURATION)
  --warmup S       seconds of load before the measurement starts (default 2, env WARMUP)
  --body BYTES     message body size (default 128)
  --visibility S   visibility timeout = claim lease TTL in seconds (default 30)
Environment:
  PORT_BASE    (25000) member i (1..3) listens for clients on PORT_BASE+i, peers on PORT_BASE+10+i
  KEEP_TMP     (0) 1 = keep the temp dir (data dirs and member logs) and print its path
  BENCH_TMPDIR (/var/tmp) where the temp dir is created; must be a real disk, not tmpfs
               (fsync is free on tmpfs); a warning is printed if it is tmpfs
  ETCD         (etcd) the etcd binary
  STOP_GRACE   (2) seconds between TERM and KILL when the members are stopped
"""
import argparse
import base64
import http.client
import json
import multiprocessing as mp
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

QUEUE = "bench"
PFX = "dq/%s/" % QUEUE
MSG_PFX = PFX + "m/"
CLAIM_PFX = PFX + "c/"
IDEM_PFX = PFX + "idem/"
DEDUP_TTL = 600          # seconds, the producer's dedup lease
PEEK_LIMIT = 64          # candidates per dequeue range
POLL_SLEEP = 0.005       # seconds between polls when nothing could be claimed
HTTP_TIMEOUT = 10.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg):
    print("# " + msg, file=sys.stderr, flush=True)


def b64(s):
    if isinstance(s, str):
        s = s.encode()
    return base64.b64encode(s).decode()


def unb64(s):
    return base64.b64decode(s) if s else b""


def prefix_end(prefix):
    """range_end that covers every key starting with prefix (last byte + 1)."""
    p = bytearray(prefix.encode())
    p[-1] += 1
    return bytes(p)


class EtcdError(Exception):
    pass


class Conn:
    """One keep-alive HTTP/1.1 connection to one etcd member's JSON gateway.
    A failed request closes the connection (it is reopened by the next request) and raises;
    requests are never retried here, so a txn is never applied twice by the client."""

    def __init__(self, url, timeout=HTTP_TIMEOUT):
        hostport = url.split("://", 1)[1]
        self.host, port = hostport.rsplit(":", 1)
        self.port = int(port)
        self.timeout = timeout
        self.conn = None
        self.requests = 0

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def call(self, path, obj):
        body = json.dumps(obj).encode()
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        self.requests += 1
        try:
            self.conn.request("POST", path, body, {"Content-Type": "application/json"})
            r = self.conn.getresponse()
            data = r.read()
        except (http.client.HTTPException, OSError):
            self.close()
            raise
        try:
            out = json.loads(data or b"{}")
        except ValueError:
            raise EtcdError("HTTP %d, not JSON: %r" % (r.status, data[:200]))
        if r.status != 200 or "error" in out:
            raise EtcdError("HTTP %d %s: %s" % (r.status, path, out.get("error", data[:200])))
        return out

    # -- etcd operations ------------------------------------------------------------------
    def put(self, key, value):
        return self.call("/v3/kv/put", {"key": b64(key), "value": b64(value)})

    def grant(self, ttl):
        return int(self.call("/v3/lease/grant", {"TTL": ttl, "ID": 0})["ID"])

    def revoke(self, lease):
        return self.call("/v3/lease/revoke", {"ID": str(lease)})

    def txn(self, compare, success, failure=()):
        r = self.call("/v3/kv/txn", {"compare": compare, "success": list(success),
                                     "failure": list(failure)})
        # proto3 JSON omits false booleans: a failed txn has no "succeeded" field
        return bool(r.get("succeeded", False)), int(r["header"]["revision"]), r

    def range_prefix(self, prefix, **opts):
        req = {"key": b64(prefix), "range_end": b64(prefix_end(prefix))}
        req.update(opts)
        return self.call("/v3/kv/range", req)

    def status(self):
        return self.call("/v3/maintenance/status", {})


# ------------------------------------------------------------------------------- workers
def _worker_init():
    # Ctrl-C goes to the whole foreground process group: the parent alone handles it and
    # terminates the workers by PID.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _wait_start(barrier, go, times):
    barrier.wait()
    go.wait()
    return times[0], times[1]          # measurement start, end (CLOCK_MONOTONIC)


def producer(idx, url, body_size, barrier, go, times, results):
    _worker_init()
    c = Conn(url)
    st = {"kind": "producer", "idx": idx, "enqueued": 0, "dups": 0, "errors": 0,
          "first_error": None, "done": {}}
    try:
        dedup_lease = c.grant(DEDUP_TTL)
    except Exception as e:   # noqa: BLE001 - reported to the parent
        st["fatal"] = "grant dedup lease: %r" % (e,)
        barrier.abort()
        results.put(st)
        return
    t_meas, t_end = _wait_start(barrier, go, times)
    done = st["done"]
    seq = 0
    while True:
        now = time.monotonic()
        if now >= t_end:
            break
        seq += 1
        mid = "%02d.%09d" % (idx, seq)            # unique message id
        ikey = "p%d-%d" % (idx, seq)              # idempotency key, unique per message
        head = "%.6f %s " % (now, mid)
        body = (head + "x" * max(0, body_size - len(head))).encode()[:body_size]
        idem = IDEM_PFX + ikey
        try:
            ok, _, _ = c.txn(
                [{"key": b64(idem), "target": "VERSION", "result": "EQUAL", "version": "0"}],
                [{"request_put": {"key": b64(idem), "value": "", "lease": str(dedup_lease)}},
                 {"request_put": {"key": b64(MSG_PFX + mid), "value": b64(body)}}])
        except Exception as e:   # noqa: BLE001
            t = time.monotonic()
            if t_meas <= t < t_end:
                st["errors"] += 1
            st["first_error"] = st["first_error"] or repr(e)
            continue
        t = time.monotonic()
        if ok:
            done[mid] = t
            if t_meas <= t < t_end:
                st["enqueued"] += 1
        elif t_meas <= t < t_end:
            st["dups"] += 1          # cannot happen with unique keys; reported if it does
    st["requests"] = c.requests
    c.close()
    results.put(st)


def consumer(idx, url, visibility, barrier, go, times, results):
    _worker_init()
    c = Conn(url)
    name = "c%02d" % idx
    st = {"kind": "consumer", "idx": idx, "acked": 0, "conflicts": 0, "errors": 0,
          "ack_lost": 0, "empty_polls": 0, "first_error": None, "acks": []}
    t_meas, t_end = _wait_start(barrier, go, times)
    acks = st["acks"]
    lease, lease_t = None, 0.0
    mstart = len(MSG_PFX)
    cstart = len(CLAIM_PFX)

    def in_window():
        t = time.monotonic()
        return t_meas <= t < t_end

    def err(e):
        if in_window():
            st["errors"] += 1
        st["first_error"] = st["first_error"] or repr(e)

    while time.monotonic() < t_end:
        try:
            # one claim lease per dequeue attempt; kept while no claim succeeded, renewed
            # (a new grant) once half its TTL has passed, so a claim never gets a lease
            # that is about to expire
            if lease is None or time.monotonic() - lease_t > visibility / 2:
                lease, lease_t = c.grant(visibility), time.monotonic()
            r = c.range_prefix(MSG_PFX, sort_target="CREATE", sort_order="ASCEND",
                               limit=str(PEEK_LIMIT))
            kvs = r.get("kvs", [])
            got = None
            if kvs:
                rc = c.range_prefix(CLAIM_PFX, keys_only=True)
                claimed = {unb64(kv["key"])[cstart:] for kv in rc.get("kvs", [])}
                for kv in kvs:
                    key = unb64(kv["key"])
                    mid = key[mstart:]
                    if mid in claimed:
                        continue
                    ckey = CLAIM_PFX.encode() + mid
                    ok, rev, _ = c.txn(
                        [{"key": b64(ckey), "target": "CREATE", "result": "EQUAL",
                          "create_revision": "0"},
                         {"key": b64(key), "target": "VERSION", "result": "GREATER",
                          "version": "0"}],
                        [{"request_put": {"key": b64(ckey), "value": b64(name),
                                          "lease": str(lease)}}])
                    if ok:
                        got = (mid, key, ckey, rev, unb64(kv.get("value")))
                        break
                    if in_window():
                        st["conflicts"] += 1
            if got is None:
                if in_window():
                    st["empty_polls"] += 1
                time.sleep(POLL_SLEEP)
                continue
        except Exception as e:   # noqa: BLE001
            err(e)
            continue
        # delivered: "process" it (no work), then ack
        mid, key, ckey, rev, _body = got
        try:
            ok, _, _ = c.txn(
                [{"key": b64(ckey), "target": "MOD", "result": "EQUAL", "mod_revision": str(rev)}],
                [{"request_delete_range": {"key": b64(key)}},
                 {"request_delete_range": {"key": b64(ckey)}}])
        except Exception as e:   # noqa: BLE001
            err(e)
            lease = None      # the claim (if any) stays until its lease expires
            continue
        t = time.monotonic()
        if ok:
            if t_meas <= t < t_end:
                st["acked"] += 1
                acks.append((mid.decode(), t))
        elif t_meas <= t < t_end:
            st["ack_lost"] += 1     # claim expired/stolen before the ack: counted as an error
            st["errors"] += 1
        # The claim lease is revoked right away (one more Raft round trip). Leaving it to
        # expire would be cheaper for the benchmark but not the same work: with a 30 s TTL
        # no lease would even expire inside a 10 s run, and the expiry revocations (one per
        # message) would land on the cluster later, uncounted. Revoking keeps every
        # message's full cost inside the measured window, like dqueue releasing its claim.
        try:
            c.revoke(lease)
        except Exception as e:   # noqa: BLE001
            err(e)
        lease = None
    st["requests"] = c.requests
    c.close()
    results.put(st)


# ------------------------------------------------------------------------------- cluster
def proc_ticks(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            rest = f.read().rsplit(")", 1)[1].split()
        return int(rest[11]) + int(rest[12])    # utime, stime (fields 14 and 15)
    except (OSError, IndexError, ValueError):
        return 0


def sys_cpu():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return sum(v), v[3] + v[4]      # total, idle+iowait


def fs_type(path):
    best, fstype = "", "?"
    path = os.path.realpath(path)
    with open("/proc/mounts") as f:
        for line in f:
            parts = line.split()
            mnt = parts[1].replace("\\040", " ")
            if (path == mnt or path.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best):
                best, fstype = mnt, parts[2]
    return fstype


def port_free(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # like etcd (Go sets SO_REUSEADDR): TIME_WAIT leftovers of a previous run do not count,
    # only a socket that is listening there
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


class Cluster:
    def __init__(self, etcd, tmp, port_base, n=3):
        self.etcd, self.tmp, self.n = etcd, tmp, n
        self.client = ["http://127.0.0.1:%d" % (port_base + i) for i in range(1, n + 1)]
        self.peer = ["http://127.0.0.1:%d" % (port_base + 10 + i) for i in range(1, n + 1)]
        self.procs = []
        self.logs = []

    def start(self):
        ic = ",".join("m%d=%s" % (i + 1, self.peer[i]) for i in range(self.n))
        # etcd reads ETCD_* environment variables as flags: only the flags below apply
        env = {k: v for k, v in os.environ.items() if not k.startswith("ETCD_")}
        os.makedirs(os.path.join(self.tmp, "logs"), exist_ok=True)
        token = "etcd-queue-%d-%d" % (os.getpid(), int(time.time()))
        for i in range(self.n):
            lf = open(os.path.join(self.tmp, "logs", "m%d.log" % (i + 1)), "wb")
            self.logs.append(lf)
            cmd = [self.etcd, "--name", "m%d" % (i + 1),
                   "--data-dir", os.path.join(self.tmp, "m%d" % (i + 1)),
                   "--listen-client-urls", self.client[i],
                   "--advertise-client-urls", self.client[i],
                   "--listen-peer-urls", self.peer[i],
                   "--initial-advertise-peer-urls", self.peer[i],
                   "--initial-cluster", ic, "--initial-cluster-state", "new",
                   "--initial-cluster-token", token,
                   "--logger", "zap", "--log-outputs", "stderr"]
            # own session: a Ctrl-C in the terminal reaches this script, which stops the
            # members itself (TERM, grace, KILL)
            self.procs.append(subprocess.Popen(cmd, stdout=lf, stderr=subprocess.STDOUT,
                                               stdin=subprocess.DEVNULL, env=env,
                                               start_new_session=True))

    def pids(self):
        return [p.pid for p in self.procs]

    def wait_ready(self, deadline_s=60.0):
        """Until one PUT succeeds on any member (round-robin, 1 s timeout each)."""
        end = time.monotonic() + deadline_s
        i = 0
        while time.monotonic() < end:
            for p in self.procs:
                if p.poll() is not None:
                    raise RuntimeError("etcd member pid %d exited with %s (logs in %s)"
                                       % (p.pid, p.returncode, os.path.join(self.tmp, "logs")))
            c = Conn(self.client[i % self.n], timeout=1.0)
            try:
                c.put("probe/ready", "1")
                return self.client[i % self.n]
            except Exception:   # noqa: BLE001
                time.sleep(0.05)
            finally:
                c.close()
            i += 1
        raise RuntimeError("the cluster never served a put within %.0f s" % deadline_s)

    def leader(self, deadline_s=10.0):
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            for i, url in enumerate(self.client):
                c = Conn(url, timeout=2.0)
                try:
                    st = c.status()
                except Exception:   # noqa: BLE001
                    continue
                finally:
                    c.close()
                if st.get("leader") and st["header"].get("member_id") == st["leader"]:
                    return i, url, st.get("version", "?")
            time.sleep(0.1)
        raise RuntimeError("no member reports itself as leader")

    def stop(self, grace):
        for p in self.procs:
            if p.poll() is None:
                try:
                    os.kill(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        end = time.monotonic() + grace
        while time.monotonic() < end and any(p.poll() is None for p in self.procs):
            time.sleep(0.05)
        for p in self.procs:
            if p.poll() is None:
                try:
                    os.kill(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        for lf in self.logs:
            lf.close()
        self.procs, self.logs = [], []


# ------------------------------------------------------------------------------- main
def percentile(sorted_vals, p):
    if not sorted_vals:
        return 0.0
    k = max(0, min(len(sorted_vals) - 1, int(-(-p * len(sorted_vals) // 1)) - 1))
    return sorted_vals[k]


def env_num(name, default, conv=int):
    v = os.environ.get(name)
    return conv(v) if v not in (None, "") else default


def parse_args(argv):
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n", 1)[0],
        epilog=__doc__.split("\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--producers", type=int, default=env_num("PRODUCERS", 8),
                    help="producer processes (default 8)")
    ap.add_argument("--consumers", type=int, default=env_num("CONSUMERS", 8),
                    help="consumer processes (default 8)")
    ap.add_argument("--duration", type=float, default=env_num("DURATION", 10.0, float),
                    help="measured seconds (default 10)")
    ap.add_argument("--warmup", type=float, default=env_num("WARMUP", 2.0, float),
                    help="seconds of load before the measurement (default 2)")
    ap.add_argument("--body", type=int, default=128, help="message body bytes (default 128)")
    ap.add_argument("--visibility", type=int, default=30,
                    help="visibility timeout = claim lease TTL, seconds (default 30)")
    a = ap.parse_args(argv)
    if a.producers < 1 or a.consumers < 1 or a.duration <= 0 or a.warmup < 0:
        ap.error("producers/consumers must be >= 1, duration > 0, warmup >= 0")
    if a.body < 32:
        ap.error("--body must be at least 32 bytes (it carries a timestamp and the id)")
    if a.visibility < 2:
        ap.error("--visibility must be at least 2 s")
    return a


def main(argv):
    args = parse_args(argv)
    etcd = shutil.which(os.environ.get("ETCD", "etcd"))
    if not etcd:
        print("etcd_queue.py: etcd binary not found (%s); install it, e.g. "
              "apt-get install etcd-server, or set ETCD=/path/to/etcd"
              % os.environ.get("ETCD", "etcd"), file=sys.stderr)
        return 1
    try:
        ver = subprocess.run([etcd, "--version"], capture_output=True, text=True,
                             timeout=10).stdout.splitlines()
        etcd_version = ver[0].split(":", 1)[1].strip() if ver and ":" in ver[0] else "?"
    except (OSError, subprocess.SubprocessError):
        print("etcd_queue.py: cannot run %s --version" % etcd, file=sys.stderr)
        return 1

    port_base = env_num("PORT_BASE", 25000)
    keep_tmp = os.environ.get("KEEP_TMP", "0") == "1"
    grace = env_num("STOP_GRACE", 2.0, float)
    busy = [p for i in range(1, 4) for p in (port_base + i, port_base + 10 + i)
            if not port_free(p)]
    if busy:
        print("etcd_queue.py: port(s) %s in use; set PORT_BASE" % busy, file=sys.stderr)
        return 1

    base = os.environ.get("BENCH_TMPDIR", "/var/tmp")
    tmp = tempfile.mkdtemp(prefix="etcd-queue.", dir=base)
    fstype = fs_type(tmp)
    if fstype == "tmpfs":
        log("WARNING: %s is on tmpfs, fsync is free there; set BENCH_TMPDIR to a disk" % tmp)

    def on_term(signum, _frame):
        raise KeyboardInterrupt("signal %d" % signum)
    signal.signal(signal.SIGTERM, on_term)
    # explicit: a shell starts background jobs with SIGINT ignored, and Python then keeps it so
    signal.signal(signal.SIGINT, signal.default_int_handler)

    cluster = Cluster(etcd, tmp, port_base)
    workers = []
    rc = 0
    try:
        t0 = time.monotonic()
        cluster.start()
        cluster.wait_ready()
        ready_ms = (time.monotonic() - t0) * 1000
        li, lurl, sver = cluster.leader()
        log("cluster ready in %.0f ms, leader m%d %s (server %s), data in %s (%s)"
            % (ready_ms, li + 1, lurl, sver, tmp, fstype))
        print("# etcd-queue setup: members=3 fsync=on(etcd default) producers=%d consumers=%d "
              "body_bytes=%d duration_s=%g warmup_s=%g visibility_s=%d peek_limit=%d "
              "poll_sleep_ms=%g etcd=%s leader=m%d client=python-http.client(1 conn/process) "
              "cores=%d datadir_fs=%s consumers_poll=yes(no watch over the JSON gateway)"
              % (args.producers, args.consumers, args.body, args.duration, args.warmup,
                 args.visibility, PEEK_LIMIT, POLL_SLEEP * 1000, etcd_version, li + 1,
                 os.cpu_count() or 0, fstype), flush=True)

        ctx = mp.get_context("fork")
        nworkers = args.producers + args.consumers
        barrier = ctx.Barrier(nworkers + 1)
        go = ctx.Event()
        times = ctx.Array("d", 2)
        results = ctx.Queue()
        for i in range(args.producers):
            workers.append(ctx.Process(target=producer, daemon=True,
                                       args=(i, lurl, args.body, barrier, go, times, results)))
        for i in range(args.consumers):
            workers.append(ctx.Process(target=consumer, daemon=True,
                                       args=(i, lurl, args.visibility, barrier, go, times,
                                             results)))
        for w in workers:
            w.start()
        try:
            barrier.wait(timeout=60)
        except Exception:   # noqa: BLE001 - BrokenBarrierError: a producer could not start
            raise RuntimeError("workers failed to start")
        t_start = time.monotonic() + 0.05
        t_meas = t_start + args.warmup
        t_end = t_meas + args.duration
        times[0], times[1] = t_meas, t_end
        go.set()
        wpids = [w.pid for w in workers]
        time.sleep(max(0.0, t_meas - time.monotonic()))
        s0 = sum(proc_ticks(p) for p in cluster.pids())
        c0 = sum(proc_ticks(p) for p in wpids)
        y0 = sys_cpu()
        w0 = time.monotonic()
        time.sleep(max(0.0, t_end - time.monotonic()))
        s1 = sum(proc_ticks(p) for p in cluster.pids())
        c1 = sum(proc_ticks(p) for p in wpids)
        y1 = sys_cpu()
        wall = time.monotonic() - w0

        stats = []
        deadline = time.monotonic() + HTTP_TIMEOUT + 30
        while len(stats) < nworkers:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError("only %d of %d workers reported" % (len(stats), nworkers))
            try:
                stats.append(results.get(timeout=left))
            except Exception:   # noqa: BLE001 - queue.Empty
                continue
        for w in workers:
            w.join(timeout=5)

        fatal = [s["fatal"] for s in stats if "fatal" in s]
        if fatal:
            raise RuntimeError("worker failed: %s" % fatal[0])
        prods = [s for s in stats if s["kind"] == "producer"]
        cons = [s for s in stats if s["kind"] == "consumer"]
        done = {}
        for s in prods:
            done.update(s["done"])
        lat = []
        unmatched = 0
        for s in cons:
            for mid, t in s["acks"]:
                te = done.get(mid)
                if te is None:
                    unmatched += 1
                else:
                    lat.append((t - te) * 1000.0)
        lat.sort()
        all_acked = [mid for s in cons for mid, _ in s["acks"]]
        dup_acks = len(all_acked) - len(set(all_acked))   # must be 0: a message acked twice
        acked = sum(s["acked"] for s in cons)
        enq = sum(s["enqueued"] for s in prods)
        conflicts = sum(s["conflicts"] for s in cons)
        errors = sum(s["errors"] for s in stats)
        requests = sum(s.get("requests", 0) for s in stats)   # whole run, warm-up included

        # what is left in the queue
        c = Conn(lurl)
        try:
            backlog = int(c.range_prefix(MSG_PFX, count_only=True).get("count", 0))
            inflight = int(c.range_prefix(CLAIM_PFX, count_only=True).get("count", 0))
        except Exception:   # noqa: BLE001
            backlog = inflight = -1
        finally:
            c.close()

        d = args.duration
        print("etcd-queue msgs_per_s=%.1f enqueued_per_s=%.1f acked=%d conflicts=%d errors=%d "
              "p50_ms=%.2f p99_ms=%.2f"
              % (acked / d, enq / d, acked, conflicts, errors,
                 percentile(lat, 0.50), percentile(lat, 0.99)), flush=True)
        dt = y1[0] - y0[0]
        print("etcd-queue-extra srv_cpu%%=%.0f cli_cpu%%=%.0f idle%%=%.0f enqueued=%d "
              "empty_polls=%d ack_lost=%d dup_enqueues=%d requests_per_s=%.0f "
              "backlog_end=%d claimed_end=%d lat_unmatched=%d dup_acks=%d ready_ms=%.0f"
              % (100.0 * (s1 - s0) / CLK_TCK / wall, 100.0 * (c1 - c0) / CLK_TCK / wall,
                 100.0 * (y1[1] - y0[1]) / dt if dt > 0 else 0.0, enq,
                 sum(s["empty_polls"] for s in cons), sum(s["ack_lost"] for s in cons),
                 sum(s["dups"] for s in prods), requests / (args.warmup + d),
                 backlog, inflight, unmatched, dup_acks, ready_ms), flush=True)
        errs = [s["first_error"] for s in stats if s.get("first_error")]
        if errs:
            log("first worker error: %s" % errs[0])
    except KeyboardInterrupt:
        log("interrupted")
        rc = 130
    except RuntimeError as e:
        print("etcd_queue.py: %s" % e, file=sys.stderr)
        rc = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for w in workers:
            if w.is_alive():
                try:
                    os.kill(w.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for w in workers:
            w.join(timeout=2)
            if w.is_alive():
                try:
                    os.kill(w.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                w.join(timeout=2)
        cluster.stop(grace)
        if keep_tmp:
            log("kept %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
