#!/usr/bin/env python3
"""Build conformance cases from Pacemaker's scheduler regression tests.

Usage: build-cases.py CTS_SCHEDULER_DIR CASES_TXT DEST_DIR

For each NAME in CASES_TXT (one a line, '#' comments allowed) writes
  DEST_DIR/NAME.xml            a copy of CTS_SCHEDULER_DIR/xml/NAME.xml
  DEST_DIR/NAME.expected.json  the placement Pacemaker recorded in
                               CTS_SCHEDULER_DIR/summary/NAME.summary
The placement is exactly what
  python3 placement.py --leaves --with-nodes --cib xml/NAME.xml summary/NAME.summary
prints, reduced to the fields FORMAT.md defines ("role" and "nodes" per
resource), as indented JSON without a trailing newline. Done in one process
(placement.py imported as a module) because 320 interpreter starts are slow.
"""
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import placement  # noqa: E402  (the sibling placement.py)


def expected(cts, name):
    xml = os.path.join(cts, "xml", name + ".xml")
    summary = os.path.join(cts, "summary", name + ".summary")
    nodes, res = placement.load(summary, "revised", xml)
    res = placement.leaves(res)
    out = {"nodes": nodes,
           "resources": {k: {"nodes": v["nodes"], "role": v["role"]} for k, v in res.items()}}
    return json.dumps(out, indent=1, sort_keys=True)


def main():
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    cts, cases_txt, dest = sys.argv[1:]
    with open(cases_txt) as f:
        names = [ln.strip() for ln in f if ln.strip() and not ln.startswith("#")]
    os.makedirs(dest, exist_ok=True)
    errors = 0
    for name in names:
        src = os.path.join(cts, "xml", name + ".xml")
        if not os.path.exists(src) or not os.path.exists(os.path.join(cts, "summary", name + ".summary")):
            print(f"error: case {name}: no xml/{name}.xml or summary/{name}.summary in {cts}",
                  file=sys.stderr)
            errors += 1
            continue
        try:
            text = expected(cts, name)
        except Exception as e:  # placement.ParseError or a broken file
            print(f"error: case {name}: cannot read its summary: {e}", file=sys.stderr)
            errors += 1
            continue
        shutil.copyfile(src, os.path.join(dest, name + ".xml"))
        with open(os.path.join(dest, name + ".expected.json"), "w") as f:
            f.write(text)
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
