"""Checks JSON bodies against one schema of static/openapi.json, twice:

- as the schema is written (types, required fields, limits), with `jsonschema`;
- strictly by name: wherever the schema lists an object's properties, each field
  a body has there must be one of them. The flow API lets unknown fields through
  to Meta (additionalProperties), so without this a misspelt field
  (`reaction.messageId` for `message_id`) would pass and only Meta would refuse.

usage: python3 check_against_openapi.py DOC POINTER BODIES
  DOC      the OpenAPI document (JSON)
  POINTER  a JSON pointer to the schema in DOC, e.g.
           /paths/~1api~1v1~1listeners/post/requestBody/content/application~1json/schema
  BODIES   a JSON file holding an array of bodies
Prints one line per problem and exits 1 if there is any, else prints "valid N".
"""

import json
import sys

import jsonschema


def at(doc, pointer):
    node = doc
    for part in pointer.lstrip("/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def unknown_fields(doc, body, schema, path):
    while isinstance(schema, dict) and "$ref" in schema:
        schema = at(doc, schema["$ref"][1:])
    found = []
    if not isinstance(schema, dict):
        return found
    props = schema.get("properties")
    if isinstance(body, dict) and isinstance(props, dict):
        for name, value in body.items():
            if name not in props:
                found.append(f"{path}/{name} is not a field of the schema")
            else:
                found += unknown_fields(doc, value, props[name], f"{path}/{name}")
    elif isinstance(body, list) and isinstance(schema.get("items"), dict):
        for i, value in enumerate(body):
            found += unknown_fields(doc, value, schema["items"], f"{path}/{i}")
    return found


def main():
    doc_file, pointer, bodies_file = sys.argv[1:4]
    with open(doc_file) as f:
        doc = json.load(f)
    with open(bodies_file) as f:
        bodies = json.load(f)
    # The document's components beside the schema, so `#/components/...` resolves.
    schema = dict(at(doc, pointer), components=doc.get("components", {}))
    validator = jsonschema.Draft4Validator(schema)
    problems = []
    for i, body in enumerate(bodies):
        for error in validator.iter_errors(body):
            where = "/".join(str(p) for p in error.absolute_path)
            problems.append(f"body {i} at /{where}: {error.message}")
        problems += [f"body {i}: {p}" for p in unknown_fields(doc, body, schema, "")]
    for problem in problems:
        print(problem)
    if problems:
        sys.exit(1)
    print(f"valid {len(bodies)}")


main()
