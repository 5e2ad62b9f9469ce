# Per kind: mean span, mean median work/wait over the layers' phases; and gaps between phases.
import json,gzip,sys,collections
t=json.load(gzip.open(sys.argv[1]))['traceEvents']
g=collections.defaultdict(list)
by=collections.defaultdict(list)
for e in t: by[e['tid']].append(e)
waits={}
for tid,es in by.items():
    es.sort(key=lambda e:(e['ts'],0 if e['cat']=='wait' else 1))
    lw=None
    for e in es:
        if e['cat']=='wait': lw=e; continue
        waits[id(e)]=lw['dur'] if lw else 0
for e in t:
    if e['cat']=='task': g[e['args']['group']].append(e)
med=lambda v: sorted(v)[len(v)//2]
kinds=collections.defaultdict(lambda: collections.defaultdict(list))
ks=sorted(g); prev_end=None
for k in ks:
    es=g[k]; s=min(e['ts'] for e in es); f=max(e['ts']+e['dur'] for e in es)
    n=es[0]['name']
    kinds[n]['span'].append(f-s); kinds[n]['work'].append(med([e['dur'] for e in es])); kinds[n]['maxwork'].append(max(e['dur'] for e in es))
    kinds[n]['wait'].append(med([waits[id(e)] for e in es]))
    if prev_end is not None: kinds[n]['gap_before'].append(s-prev_end)
    prev_end=f
tot=max(e['ts']+e['dur'] for e in t)
print('step %.1f'%tot)
for n,d in kinds.items():
    print('%-16s x%2d '%(n,len(d['span']))+' '.join('%s=%.2f'%(k,sum(v)/len(v)) for k,v in d.items()))
