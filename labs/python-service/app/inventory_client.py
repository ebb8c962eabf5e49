"""Calls to the inventory service, each with a timeout."""

import json
import urllib.request

import config
import metrics


def _get(path, route):
    metrics.INVENTORY_CALLS.inc(route=route)
    url = config.INVENTORY_URL + path
    with urllib.request.urlopen(url, timeout=config.INVENTORY_TIMEOUT_SECONDS) as answer:
        return json.load(answer)


def fetch_item(item_id):
    """One item: one request to the inventory, one query there."""
    return _get(f"/items/{item_id}", "item")


def fetch_items(item_ids):
    """Many items: one request, one query, whatever their number."""
    ids = ",".join(str(i) for i in item_ids)
    return {item["id"]: item for item in _get(f"/items?ids={ids}", "batch")["items"]}
