#!/usr/bin/env python3
"""test_cli_reference.py — docs/cli.md stays the CLI's own help: the first code block of
each "## sbx CMD" section is exactly `sbx CMD --help` (and the up section's second block
`sbx up --backend ec2 --help` where the doc shows it), every command `sbx --help` lists
has a section, and scripts/manpage.sh puts every one of those commands in the man page.
When a --help changes, paste its new text into docs/cli.md."""
import os
import re
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SBX = os.environ.get("SBX_BIN", os.path.join(ROOT, "build", "sbx"))
failed = []


def check(name, cond, why=""):
    print(("ok   %s" % name) if cond else ("FAIL %s: %s" % (name, why)), flush=True)
    if not cond:
        failed.append(name)


def help_text(*args):
    r = subprocess.run([SBX, *args, "--help"], capture_output=True, text=True, timeout=30,
                       env=dict(os.environ, COLUMNS="80"))
    return r.returncode, (r.stdout + r.stderr).rstrip("\n")


def sections(md):
    """{"up": [block, ...], ...} from '## sbx CMD' headings and their ``` blocks."""
    out = {}
    for part in re.split(r"^## ", md, flags=re.M)[1:]:
        title, _, body = part.partition("\n")
        m = re.fullmatch(r"sbx ([a-z0-9-]+)", title.strip())
        if m:
            out[m.group(1)] = [b.rstrip("\n") for b in re.findall(r"^```\n(.*?)^```$", body, flags=re.M | re.S)]
    return out


def main():
    with open(os.path.join(ROOT, "docs", "cli.md")) as f:
        doc = sections(f.read())
    rc, top = help_text()
    listed = []
    for line in top.splitlines():
        m = re.match(r"  ([a-z0-9-]+)\b", line)
        if m and m.group(1) not in ("help", "version") and m.group(1) not in listed:
            listed.append(m.group(1))
    check("top_help_lists_commands", rc == 0 and len(listed) >= 8, top)
    missing = [c for c in listed if c not in doc]
    check("every_command_has_a_section", not missing, "no '## sbx %s' in docs/cli.md" % missing)
    for cmd, blocks in sorted(doc.items()):
        rc, text = help_text(cmd)
        check("cli_md_%s_is_its_help" % cmd.replace("-", "_"), rc == 0 and blocks and blocks[0] == text,
              "docs/cli.md's block differs from `sbx %s --help`:\n--- doc\n%s\n--- help\n%s" %
              (cmd, blocks[0] if blocks else "(none)", text))
    ec2 = [b for b in doc.get("up", []) if "--backend ec2" in b.splitlines()[0]]
    if ec2:
        rc, text = help_text("up", "--backend", "ec2")
        check("cli_md_up_ec2_is_its_help", ec2[0] == text, "--- doc\n%s\n--- help\n%s" % (ec2[0], text))
    with open(os.path.join(ROOT, "scripts", "manpage.sh")) as f:
        script = f.read()
    m = re.search(r"for cmd in ([a-z0-9 -]+); do", script)
    in_man = m.group(1).split() if m else []
    check("man_page_has_every_command", m and all(c in in_man for c in listed),
          "scripts/manpage.sh lacks %s" % [c for c in listed if c not in in_man])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
