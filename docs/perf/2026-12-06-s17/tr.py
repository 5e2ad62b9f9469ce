import json,gzip,sys,collections
t=json.load(gzip.open(sys.argv[1]))['traceEvents']
tasks=[e for e in t if e.get('cat')=='task']
g=collections.defaultdict(list)
for e in tasks: g[e['args']['group']].append(e)
tot=max(e['ts']+e['dur'] for e in t)
print('step us',tot, 'sms',len(set(e['tid'] for e in t)))
rows=[]
for k in sorted(g):
    es=g[k]; s=min(e['ts'] for e in es); f=max(e['ts']+e['dur'] for e in es)
    d=sorted(e['dur'] for e in es); b=sum(e['args']['bytes'] for e in es)
    rows.append((k,es[0]['name'],len(es),s,f,f-s,d[len(d)//2],b/1e6, b/(f-s)/1e6 if f>s else 0))
lim=int(sys.argv[2]) if len(sys.argv)>2 else 20
for r in rows[:lim]+rows[-4:]: print('%3d %-16s n=%3d start=%8.2f end=%8.2f span=%6.2f med=%6.2f MB=%7.3f TB/s=%5.2f'%r)
