# Batched deletion (the adapter's SQL, 5000 rows, pause = batch time) on the SQLite file while
# another connection inserts one log row every 20 ms; reports insert latency p50/p99/max before
# and during the cleanup, and the batch times.
# Usage: python3 cleanup_under_writes.py DB [SECONDS] [BATCH]   (DB filled by fill.sh)
import sqlite3, threading, time, sys
DB=sys.argv[1]
CUTOFF='2026-08-02T14:13:20.000000Z'  # the first 4,000,000 rows of fill.sh are older
LIMIT_S=float(sys.argv[2]) if len(sys.argv)>2 else 240
BATCH=int(sys.argv[3]) if len(sys.argv)>3 else 1000
stop=False; phase='baseline'; lat={'baseline':[], 'cleanup':[]}
def writer():
    c=sqlite3.connect(DB, timeout=5, isolation_level=None); c.execute('PRAGMA synchronous=NORMAL')
    i=0
    while not stop:
        i+=1; t=time.perf_counter()
        c.execute("BEGIN IMMEDIATE")
        c.execute("INSERT INTO request_logs (request_id, created_at, endpoint, client_format, status_code, is_stream, input_tokens, output_tokens, cache_creation_5m_tokens, cache_creation_1h_tokens, cache_read_tokens, cost_usd, cost_known, duration_ms, provider_chain) VALUES (?, '2026-12-04T00:00:00.000000Z', '/v1/messages','claude',200,0,1,1,0,0,0,'0',1,1,'[]')", (f'w-{time.time_ns()}-{i}',))
        c.execute("COMMIT")
        lat[phase].append((time.perf_counter()-t)*1000)
        time.sleep(0.02)
th=threading.Thread(target=writer); th.start()
time.sleep(15)
phase='cleanup'
d=sqlite3.connect(DB, timeout=5, isolation_level=None)
batches=[]; rows=0; t0=time.perf_counter()
while time.perf_counter()-t0 < LIMIT_S:
    t=time.perf_counter()
    n=d.execute("DELETE FROM request_logs WHERE id IN (SELECT id FROM request_logs WHERE created_at < ? ORDER BY created_at, id LIMIT ?)", (CUTOFF, BATCH)).rowcount
    dt=time.perf_counter()-t; batches.append(dt*1000); rows+=n
    if n<BATCH: break
    time.sleep(max(dt,0.005))
elapsed=time.perf_counter()-t0
stop=True; th.join()
def pct(v,p): v=sorted(v); return v[min(len(v)-1,int(len(v)*p))]
for k,v in lat.items():
    print(f"insert latency {k}: n={len(v)} p50={pct(v,.5):.1f}ms p99={pct(v,.99):.1f}ms max={max(v):.1f}ms")
print(f"deleted {rows} rows in {len(batches)} batches, {elapsed:.1f}s ({rows/elapsed:.0f} rows/s); batch p50={pct(batches,.5):.0f}ms p99={pct(batches,.99):.0f}ms max={max(batches):.0f}ms")
