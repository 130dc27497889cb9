"""Print a short digest of why a Molecule scenario failed.

usage: ci-digest.py LOG [MAX_LINES]

The CI record keeps only the tail of a run, so tests/run-all.sh prints this
digest last: the failed actions, the failed test ids, and the first lines of
each Ansible failure message. Reads Molecule's log (ANSI colours and the
box-drawing margin are removed first).
"""
import re
import sys

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
MARGIN = re.compile(r"^\s*[│┌└─]*\s?(E\s+)?")


def clean(line):
    return MARGIN.sub("", ANSI.sub("", line.rstrip("\n"))).rstrip()


def digest(lines, limit):
    out = []
    seen = set()

    def add(text):
        text = text[:200]
        if text and text not in seen:
            seen.add(text)
            out.append(text)

    raw = [ANSI.sub("", ln.rstrip("\n")) for ln in lines]
    source = None  # pytest's "> " line: the statement that failed
    captured = 0  # lines still to keep of a failed test's captured output
    for i, line in enumerate(raw):
        text = clean(line)
        bare = re.sub(r"^\s*[│┌└─]*\s?", "", line)
        if bare.startswith(">"):
            source = bare[1:].strip()
        if re.match(r"^-+ Captured stdout call -+$", bare.strip()):
            captured = 3
            continue
        if captured:
            if not text or re.match(r"^[-=_]{3,}", text):
                captured = 0
            else:
                captured -= 1
                add("stdout: " + text)
            continue
        if text.startswith("FAILED - RETRYING") or "glob failed" in text:
            continue  # Molecule's polling and its look for a default scenario
        if "Executed: Failed" in line or "CRITICAL" in line:
            add(text)
        elif text.startswith("fatal: [") or text.startswith("failed: ["):
            # the host and the first few message lines
            block = [text]
            for nxt in raw[i + 1:i + 12]:
                c = clean(nxt)
                if c.startswith(("msg:", "assertion:", "stderr:", "'", '"')) or block[-1].startswith("msg:"):
                    block.append(c)
                if len(block) >= 4:
                    break
            add(" | ".join(block))
        elif re.match(r"^FAILED\b", text) or re.match(r"^ERROR\s+tests/", text):
            # pytest's short summary wraps the test id over the next lines
            parts = [text]
            for nxt in raw[i + 1:i + 4]:
                c = clean(nxt)
                if not c or c.startswith(("FAILED", "ERROR", "=")):
                    break
                parts.append(c.strip())
            add(parts[0] + " " + "".join(parts[1:]))
        elif re.match(r"^(AssertionError|E\s+AssertionError|assert )", text):
            # the statement too: an assert in a helper module (no pytest rewriting) prints no message
            add("%s  (at: %s)" % (text, source) if source and bare.startswith("E") else text)
        elif re.search(r"=+ .*\b(failed|error)s?\b.* in [0-9.]+s", text):
            add(text.strip("= "))
    if len(out) > limit:
        out = out[:limit - 1] + ["... (%d more lines; see the scenario's log)" % (len(out) - limit + 1)]
    return out


def main():
    path = sys.argv[1]
    limit = int(sys.argv[2]) if len(sys.argv) > 2 else 25
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in digest(handle.readlines(), limit):
            print("    " + line)


if __name__ == "__main__":
    main()
