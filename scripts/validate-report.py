#!/usr/bin/env python3
"""Validates hoptrace's JSON output against docs/schema/analyze.schema.json (draft 2020-12).

usage: validate-report.py SCHEMA KIND FILE...
  KIND document: FILE is `analyze --format json`
  KIND jsonl:    FILE is `analyze --format jsonl` (chains, each connection's {"connection": …} line before
                 the first chain that refers to it, then the {"summary": …} trailer)
  KIND http:     FILE is `http --format jsonl` (exchanges; the final {"summary": …} line is not checked)
Prints one line per invalid value and exits 1 if there is any; exit 2 without the jsonschema module.
"""
import json
import sys

try:
    import jsonschema
except ImportError:
    print("validate-report: the python3 jsonschema module is missing (apt-get install python3-jsonschema)", file=sys.stderr)
    sys.exit(2)


def main():
    schema_path, kind, files = sys.argv[1], sys.argv[2], sys.argv[3:]
    with open(schema_path) as f:
        schema = json.load(f)
    jsonschema.Draft202012Validator.check_schema(schema)

    def validator(name):
        sub = {"$schema": schema["$schema"], "$defs": schema["$defs"], "$ref": "#/$defs/" + name} if name else schema
        return jsonschema.Draft202012Validator(sub)

    document, chain, trailer, exchange = validator(None), validator("chain"), validator("trailer"), validator("exchange")
    connection_line = validator("connectionLine")
    problems = 0
    checked = 0
    for path in files:
        with open(path) as f:
            text = f.read()
        if kind == "document":
            values = [(document, json.loads(text), "document")]
        else:
            lines = [l for l in text.split("\n") if l.strip()]
            values = []
            described = set()
            for i, line in enumerate(lines):
                v = json.loads(line)
                if kind == "jsonl":
                    if i == len(lines) - 1:
                        values.append((trailer, v, "line %d" % (i + 1)))
                    elif "connection" in v and "hops" not in v:
                        values.append((connection_line, v, "line %d" % (i + 1)))
                        described.add(v["connection"].get("id"))
                    else:
                        values.append((chain, v, "line %d" % (i + 1)))
                        for h in v.get("hops", []):
                            if h.get("connection") not in described and "ruleEvaluation" not in h:
                                problems += 1
                                print("%s: line %d: connection %s is not described before" % (path, i + 1, h.get("connection")))
                elif "summary" not in v:
                    values.append((exchange, v, "line %d" % (i + 1)))
        for val, v, where in values:
            checked += 1
            for e in val.iter_errors(v):
                problems += 1
                print("%s: %s: %s at %s" % (path, where, e.message, "/".join(str(p) for p in e.absolute_path)))
    print("validate-report: %d value(s) checked, %d problem(s)" % (checked, problems))
    sys.exit(1 if problems else 0)


main()
