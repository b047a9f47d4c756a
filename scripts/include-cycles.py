#!/usr/bin/env python3
"""include-cycles.py — finds dependency cycles among the source files of host/ and agent/.

A file's module is its path without the extension (host/core/call.c and host/core/call.h are the
module host/core/call). Module X depends on module Y when

  * a file of X has `#include "..."` naming a header of Y (resolved like the compiler:
    next to the including file, then the Makefile's -I folders), or
  * (with --objects DIR) X's object file uses a symbol that Y's object file defines
    (nm): a call across files through a shared header such as host/core/internal.h or
    agent/agent.h, which the include graph alone cannot see.

A cycle is a strongly connected set of two or more modules under host/ or agent/.
Prints each with one cycle through it, and exits 1 when there is any.

  scripts/include-cycles.py [--objects BUILD] [--root DIR]
"""
import argparse
import os
import re
import subprocess
import sys

INCLUDE_DIRS = ["common", "agent", "host", "tests", "host/cli"]  # the Makefile's -I
SCOPE = ("host/", "agent/")
SOURCE_DIRS = ("common", "agent", "host")
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def module_of(path):
    return os.path.splitext(path)[0]


def source_files(root):
    for top in SOURCE_DIRS:
        for d, _, names in os.walk(os.path.join(root, top)):
            for n in names:
                if n.endswith((".c", ".h")):
                    yield os.path.relpath(os.path.join(d, n), root)


def resolve(root, including, name):
    for base in [os.path.dirname(including)] + INCLUDE_DIRS:
        p = os.path.normpath(os.path.join(base, name))
        if os.path.isfile(os.path.join(root, p)):
            return p
    return None


def include_edges(root):
    edges = {}
    for f in source_files(root):
        with open(os.path.join(root, f), errors="replace") as fh:
            text = fh.read()
        for name in INCLUDE.findall(text):
            target = resolve(root, f, name)
            if target and module_of(target) != module_of(f):
                edges.setdefault(module_of(f), set()).add(module_of(target))
    return edges


def nm_symbols(objs):
    """{object: (symbols it defines, symbols it uses)}, with one nm run."""
    out = subprocess.run(["nm", "-P", "-A", *objs], capture_output=True, text=True, check=True).stdout
    syms = {o: (set(), set()) for o in objs}
    for line in out.splitlines():
        head, _, rest = line.partition(": ")
        parts = rest.split()
        if head not in syms or len(parts) < 2:
            continue
        sym, kind = parts[0], parts[1]
        if kind == "U":
            syms[head][1].add(sym)
        elif kind.isupper():
            syms[head][0].add(sym)
    return syms


def symbol_edges(objdir):
    """objdir holds obj/... and agentobj/... trees mirroring the sources."""
    modules = {}
    for sub in ("obj", "agentobj"):
        top = os.path.join(objdir, sub)
        for d, _, names in os.walk(top):
            for n in names:
                if n.endswith(".o"):
                    rel = os.path.relpath(os.path.join(d, n), top)
                    mod = module_of(rel)
                    if mod.startswith(SCOPE):
                        modules.setdefault(mod, []).append(os.path.join(d, n))
    defined_by, uses = {}, {}
    syms = nm_symbols([o for objs in modules.values() for o in objs])
    for mod, objs in modules.items():
        for o in objs:
            defined, used = syms[o]
            for s in defined:
                defined_by.setdefault(s, set()).add(mod)
            uses.setdefault(mod, set()).update(used)
    edges = {}
    for mod, used in uses.items():
        for s in used:
            for target in defined_by.get(s, ()):
                if target != mod:
                    edges.setdefault(mod, set()).add(target)
    return edges


def strongly_connected(nodes, edges):
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):  # iterative Tarjan
        work = [(v, iter(sorted(edges.get(v, ()))))]
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        while work:
            node, it = work[-1]
            for w in it:
                if w not in nodes:
                    continue
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(edges.get(w, ())))))
                    break
                if w in on:
                    low[node] = min(low[node], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on.discard(w)
                        comp.append(w)
                        if w == node:
                            break
                    out.append(sorted(comp))

    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


def one_cycle(comp, edges):
    """A shortest cycle through comp[0] within the component (breadth-first)."""
    members, start = set(comp), comp[0]
    prev, frontier = {start: None}, [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(edges.get(v, ())):
                if w == start:
                    path = [v]
                    while prev[path[-1]] is not None:
                        path.append(prev[path[-1]])
                    return list(reversed(path)) + [start]
                if w in members and w not in prev:
                    prev[w] = v
                    nxt.append(w)
        frontier = nxt
    return comp


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default=os.path.join(os.path.dirname(__file__), ".."))
    ap.add_argument("--objects", help="a build folder (BUILD) to add calls across files")
    args = ap.parse_args()
    root = os.path.abspath(args.root)
    edges = include_edges(root)
    if args.objects:
        for k, v in symbol_edges(args.objects).items():
            edges.setdefault(k, set()).update(v)
    nodes = {m for m in set(edges) | {t for v in edges.values() for t in v} if m.startswith(SCOPE)}
    cycles = [c for c in strongly_connected(nodes, edges) if len(c) > 1]
    for c in cycles:
        print("cycle: " + " -> ".join(one_cycle(c, edges)) + ("  (%d modules)" % len(c)))
    print("%d modules, %d cycles" % (len(nodes), len(cycles)))
    return 1 if cycles else 0


if __name__ == "__main__":
    sys.exit(main())
