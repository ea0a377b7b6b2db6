"""Validates YAML documents against schemas/krill.schema.json as an editor would.

usage: schema_check.py SCHEMA FILE...   prints one line per file: `ok` or `invalid: why`
"""
import json
import sys

import jsonschema
import yaml

schema = json.load(open(sys.argv[1]))
validator = jsonschema.Draft202012Validator(schema)
for path in sys.argv[2:]:
    doc = yaml.safe_load(open(path))
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
    if errors:
        print("invalid: " + "; ".join(e.message for e in errors))
    else:
        print("ok")
