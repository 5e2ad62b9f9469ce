#!/usr/bin/env python3
"""Times mkc serve: per request, the time to the first token (streamed) and the tokens/s after it.
usage: client.py BASE chat|completions N MAX_TOKENS [prompt-ids]"""
import json, statistics, sys, time, urllib.request
base, kind, n, max_tokens = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
ids = [int(x) for x in sys.argv[5].split(',')] if len(sys.argv) > 5 else None
def one(i):
    if kind == 'chat':
        path, body = '/v1/chat/completions', {'model': MODEL, 'messages': [{'role': 'user', 'content': ['Tell me a long story about a dragon and a knight.', 'Explain how a bicycle works, step by step.', 'What is the capital of France? Tell me about its history.'][i % 3]}]}
    else:
        path, body = '/v1/completions', {'model': MODEL, 'prompt': ids}
    body.update(max_tokens=max_tokens, temperature=0, stream=True)
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(), headers={'Content-Type': 'application/json'})
    t0 = time.perf_counter(); first = None; last = None; toks = 0; text = ''
    with urllib.request.urlopen(req) as r:
        for line in r:
            line = line.strip()
            if not line.startswith(b'data: '): continue
            d = line[6:]
            if d == b'[DONE]': break
            c = json.loads(d)
            for ch in c.get('choices', []):
                k = len(ch.get('token_ids') or [])
                if k:
                    now = time.perf_counter(); toks += k; last = now
                    if first is None: first = now
                text += (ch.get('delta') or {}).get('content') or ch.get('text') or ''
    ttft = first - t0
    rate = (toks - 1) / (last - first) if toks > 1 and last > first else float('nan')
    return ttft, rate, toks, text
MODEL = json.load(urllib.request.urlopen(base + '/v1/models'))['data'][0]['id']
rows = [one(i) for i in range(n)]
for ttft, rate, toks, text in rows:
    print(f'ttft_ms={1000*ttft:.1f} tokens={toks} tokens_per_s={rate:.1f} text={text[:80]!r}')
print(json.dumps({'model': MODEL, 'kind': kind, 'requests': n, 'median_ttft_ms': round(1000 * statistics.median(r[0] for r in rows), 2),
                  'median_tokens_per_s': round(statistics.median(r[1] for r in rows), 1), 'tokens': [r[2] for r in rows]}))
