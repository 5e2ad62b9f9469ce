# Per phase (task group) of a trace: tasks, span, median work (after the wait), median wait,
# median gap before the task (the previous task's end stamp to this one's start: signals).
import json,gzip,sys,collections
t=json.load(gzip.open(sys.argv[1]))['traceEvents']
lim=int(sys.argv[2]) if len(sys.argv)>2 else 12
by=collections.defaultdict(list)
for e in t: by[e['tid']].append(e)
waits={}; gaps={}
for tid,es in by.items():
    es.sort(key=lambda e:(e['ts'],0 if e['cat']=='wait' else 1))
    prev_end=None; last_wait=None
    for e in es:
        if e['cat']=='wait':
            last_wait=e
            continue
        k=id(e)
        waits[k]=last_wait['dur'] if last_wait else 0
        gaps[k]=(last_wait['ts']-prev_end) if (last_wait and prev_end is not None) else 0
        prev_end=e['ts']+e['dur']
g=collections.defaultdict(list)
for e in t:
    if e['cat']=='task': g[e['args']['group']].append(e)
tot=max(e['ts']+e['dur'] for e in t)
print('step us %.1f'%tot)
med=lambda v: sorted(v)[len(v)//2]
ks=sorted(g)
for k in ks[:lim]+ks[-3:]:
    es=g[k]; s=min(e['ts'] for e in es); f=max(e['ts']+e['dur'] for e in es)
    print('%3d %-16s n=%3d start=%8.2f span=%6.2f work=%6.2f wait=%6.2f gap=%5.2f MB=%7.3f'%(k,es[0]['name'],len(es),s,f-s,med([e['dur'] for e in es]),med([waits[id(e)] for e in es]),med([gaps[id(e)] for e in es]),sum(e['args']['bytes'] for e in es)/1e6))
