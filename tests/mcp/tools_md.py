"""Writes docs/mcp.md's "## Tools" section from the driver's report.

Usage: python3 tests/mcp/tools_md.py [target/mcp-report.json [docs/mcp.md]]

The report is what the official Python MCP SDK got from `tools/list` in the test
`interop mcp::python_client_drives_two_servers`; the section between "## Tools" and
"## Tests" is replaced by it (tool order below; a tool missing from it is an error).
"""

import json
import sys

ORDER = ["id", "contacts", "add", "verify", "block", "send", "receive", "wait", "history",
         "groups", "group_create", "group_add", "group_remove", "group_rename", "group_leave",
         "group_join", "group_delete", "sync"]

INTRO = """## Tools

The list below is what the official Python MCP SDK (`mcp` 2.3.0) gets from `tools/list`, taken
from the report of the test `interop mcp::python_client_drives_two_servers`
(`target/mcp-report.json`; this section is written by `tests/mcp/tools_md.py`). Every tool
returns structured content (its output schema) and the same JSON as a text block.
"""


def strip(schema):
    return {k: v for k, v in schema.items() if k != "$schema"}


def ref_name(s):
    return s["$ref"].rsplit("/", 1)[-1]


def type_of(s, refs):
    if "$ref" in s:
        refs.append(ref_name(s))
        return ref_name(s)
    if "anyOf" in s:
        kinds = [type_of(x, refs) for x in s["anyOf"] if x.get("type") != "null"]
        return " or ".join(kinds)
    t = s.get("type")
    if isinstance(t, list):
        t = [x for x in t if x != "null"]
        t = t[0] if len(t) == 1 else " or ".join(t)
    if t == "array":
        return "array of " + type_of(s.get("items", {}), refs)
    return t or "any"


def one_line(text):
    return " ".join((text or "").split())


def tool_md(t):
    out = [f"### `{t['name']}`", "", t["description"], ""]
    ann = t.get("annotations") or {}
    if ann:
        out += ["Annotations: " + ", ".join(f"`{k}: {json.dumps(v)}`"
                                            for k, v in sorted(ann.items())), ""]
    out += ["Input schema:", "", "```json", json.dumps(strip(t["inputSchema"]), sort_keys=True),
            "```", "", "Result (structured content, also sent as a JSON text block):", "",
            "| field | type | meaning |", "|---|---|---|"]
    schema = t["outputSchema"]
    defs = schema.get("$defs", {})
    refs = []
    for name, p in sorted(schema.get("properties", {}).items()):
        out.append(f"| `{name}` | {type_of(p, refs)} | {one_line(p.get('description'))} |")
    seen = set()
    while refs:
        r = refs.pop(0)
        if r in seen or r not in defs:
            continue
        seen.add(r)
        props = defs[r].get("properties", {})
        for p in props.values():
            type_of(p, refs)  # nested definitions are listed too
        out.append(f"| *{r}* | object | " + ", ".join(f"`{k}`" for k in sorted(props)) + " |")
    return "\n".join(out) + "\n"


def main():
    report_path = sys.argv[1] if len(sys.argv) > 1 else "target/mcp-report.json"
    doc_path = sys.argv[2] if len(sys.argv) > 2 else "docs/mcp.md"
    tools = {t["name"]: t for t in json.load(open(report_path))["tools"]}
    missing = [n for n in ORDER if n not in tools]
    extra = [n for n in tools if n not in ORDER]
    if missing or extra:
        sys.exit(f"tools_md.py: missing {missing}, not in ORDER {extra}")
    doc = open(doc_path).read()
    start, end = doc.index("## Tools\n"), doc.index("## Tests\n")
    section = INTRO + "".join("\n" + tool_md(tools[n]) for n in ORDER) + "\n"
    open(doc_path, "w").write(doc[:start] + section + doc[end:])


main()
