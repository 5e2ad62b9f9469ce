# Prototype: per-task overheads and event latency from a trace and its scheduled program.
import json,gzip,re,sys,collections,statistics as st
prog=open(sys.argv[2]).read()
tasks=[]
for m in re.finditer(r'"task.task"\(\) \{(.*?)\} : \(\) -> \(\)',prog):
    a=m.group(1)
    w=re.search(r'waits = \[(.*?)\]',a).group(1); s=re.search(r'signals = \[(.*?)\]',a).group(1)
    ints=lambda x:[int(v.split(':')[0]) for v in x.split(',') if v.strip()]
    tasks.append(dict(waits=ints(w),signals=ints(s),last='on_last_signal' in a))
sig=collections.defaultdict(list)
for i,t in enumerate(tasks):
    for e in t['signals']: sig[e].append(i)
ev=json.load(gzip.open(sys.argv[1]))['traceEvents']
by=collections.defaultdict(list)
for e in ev: by[e['tid']].append(e)
info={}
for tid,es in by.items():
    es.sort(key=lambda e:(e['ts'],0 if e['cat']=='wait' else 1))
    w=None
    for e in es:
        if e['cat']=='wait': w=e; continue
        i=int(e['args']['task'][4:])
        info[i]=dict(sm=tid,start=w['ts'] if w else e['ts'],wend=e['ts'],end=e['ts']+e['dur'],kind=e['name'])
        w=None
print('tasks',len(tasks),'traced',len(info))
gaps=[];waits_ready=[];lat=[];waited=0
for tid,es in by.items():
    ts=sorted([i for i in info if info[i]['sm']==tid],key=lambda i:info[i]['start'])
    for a,b in zip(ts,ts[1:]): gaps.append(info[b]['start']-info[a]['end'])
for i,x in info.items():
    prods=[p for e in tasks[i]['waits'] for p in sig[e]]
    pe=max([info[p]['end'] for p in prods if p in info],default=None)
    if pe is None or pe < x['start']-2.0:
        waits_ready.append(x['wend']-x['start'])
    elif pe > x['start']+0.5:
        lat.append(x['wend']-pe); waited+=1
q=lambda v,p: sorted(v)[int(p*(len(v)-1))]
print('gap  med %.2f p10 %.2f p90 %.2f n %d'%(q(gaps,.5),q(gaps,.1),q(gaps,.9),len(gaps)))
print('wait(ready) med %.2f p10 %.2f p90 %.2f n %d'%(q(waits_ready,.5),q(waits_ready,.1),q(waits_ready,.9),len(waits_ready)))
print('latency med %.2f p10 %.2f p90 %.2f n %d'%(q(lat,.5),q(lat,.1),q(lat,.9),len(lat)))
