# fuzz_corpus_cover.py CONTROL_FILE OUT_DIR LIMIT: of the inputs in a libFuzzer merge control
# file (-merge=1 -merge_control_file=CONTROL_FILE), copy to OUT_DIR at most LIMIT that cover
# the most features, picked greedily (most new features first, ties: smaller). Inputs not
# named by their SHA-1 (crash-*, harness-*: reproducers) are always kept.
import sys, shutil, os
cf, out, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
lines = open(cf).read().split('\n')
n = int(lines[0]); paths = lines[2:2 + n]
ft, size = {}, {}
for l in lines[2 + n:]:
    p = l.split()
    if not p: continue
    if p[0] == 'STARTED': size[int(p[1])] = int(p[2])
    elif p[0] == 'FT': ft[int(p[1])] = set(map(int, p[2:]))
    elif p[0] == 'COV': ft[int(p[1])] |= {('c', int(x)) for x in p[2:]}
named = [i for i in range(n) if len(os.path.basename(paths[i])) != 40]
covered, chosen = set(), []
for i in named:
    chosen.append(i); covered |= ft.get(i, set())
rest = [i for i in range(n) if i not in named]
while len(chosen) < limit:
    best = max(rest, key=lambda i: (len(ft.get(i, set()) - covered), -size.get(i, 0)), default=None)
    if best is None or not (ft.get(best, set()) - covered): break
    chosen.append(best); covered |= ft[best]; rest.remove(best)
os.makedirs(out, exist_ok=True)
for i in chosen: shutil.copy(paths[i], out)
print(len(chosen))
