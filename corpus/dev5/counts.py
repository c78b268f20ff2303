import yaml, glob, os, re, collections as co
D='corpus/dev5'
U=yaml.safe_load(open(f'{D}/utterances.yaml'))
out=[]
p=out.append
N=len(U)
p(f"- caller lines: {N}")
ic=co.Counter(i for r in U for i in r['intents'])
for k in ['wants_person','leave_or_cancel','legal_or_complaint','bot_complaint']: p(f"  - `{k}`: {ic[k]}")
p(f"  - no intent: {sum(1 for r in U if not r['intents'])} ({100*sum(1 for r in U if not r['intents'])/N:.0f}%)")
p(f"  - more than one intent: {sum(1 for r in U if len(r['intents'])>1)}")
fc=co.Counter(r['frustration'] for r in U)
p("- frustration: " + ", ".join(f"{k} {fc[k]} ({100*fc[k]/N:.0f}%)" for k in ['calm','annoyed','angry']))
A=[r for r in U if r['note'].startswith('asr')]
ai=co.Counter(i for r in A for i in r['intents']); af=co.Counter(r['frustration'] for r in A)
p(f"- asr lines: {len(A)}; intents: " + ", ".join(f"{k} {ai[k]}" for k in ['wants_person','leave_or_cancel','legal_or_complaint','bot_complaint']) + f", none {sum(1 for r in A if not r['intents'])}; frustration: " + ", ".join(f"{k} {af[k]}" for k in ['calm','annoyed','angry']))
files=sorted(glob.glob(f'{D}/calls/*.yaml'))
tr=co.Counter(); says=co.Counter(); ti=co.Counter(); ls=co.Counter(); es=co.Counter(); sec=co.Counter(); press=0; mism=0
for f in files:
    d=yaml.safe_load(open(f)); e=d['expect']
    tr[e['transfer']]+=1
    ns=sum(1 for t in d['turns'] if 'say' in t); says[ns]+=1
    press+=any('press' in t for t in d['turns'])
    sec[os.path.basename(f).split('-')[1]]+=1
    if e['transfer']:
        ti[e['intent']]+=1; ls[e['latest_say']]+=1; es[e.get('earliest_say','none')]+=1
    # re-derive expect from the per-say comments
    labs=[l.split(':',1)[1].strip().split(', ') for l in open(f) if re.match(r'\s*# say \d+:',l)]
    latest=None; n=0
    for i,(fr,*ints) in enumerate(labs,1):
        n+= fr!='calm'
        if ints or fr=='angry' or n>=2: latest=i; break
    if bool(latest)!=e['transfer'] or (latest and latest!=e['latest_say']): mism+=1
p(f"- calls: {len(files)}; transfer true {tr[True]}, false {tr[False]}; calls that press a key first: {press}; calls whose expect disagrees with the per-say comments under the LABELS.md rule: {mism}")
p("- says per call: " + ", ".join(f"{k} says: {says[k]}" for k in sorted(says)) + f" (total {sum(k*v for k,v in says.items())})")
p("- intent of true calls: " + ", ".join(f"{k} {v}" for k,v in sorted(ti.items())))
p("- latest_say (true calls): " + ", ".join(f"{k}: {ls[k]}" for k in sorted(ls)))
p("- earliest_say (true calls): " + ", ".join(f"{k}: {es[k]}" for k in sorted(es, key=str)))
p(f"- WAV files in calls/audio: {len(glob.glob(f'{D}/calls/audio/*.wav'))}")
p("- sectors (calls each): " + ", ".join(f"{k} {v}" for k,v in sorted(sec.items())))
print("\n".join(out))
