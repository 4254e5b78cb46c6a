"""Verifies deliveries with the Standard Webhooks reference library (PyPI `standardwebhooks`),
so our signatures are checked by code we did not write.

stdin: a JSON list of {"secret", "headers": {...}, "body": "<raw body>"}; exits non-zero on the first failure.
"""
import json
import sys

from standardwebhooks.webhooks import Webhook

items = json.load(sys.stdin)
for i, item in enumerate(items):
    try:
        Webhook(item["secret"]).verify(item["body"].encode("utf-8"), item["headers"])
    except Exception as e:  # noqa: BLE001 - report whatever the library raised
        print(f"delivery {i} failed verification: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
print(f"verified {len(items)}")
