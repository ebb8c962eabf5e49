"""Order reports: a text document per order, cached because rendering one is not free."""

from collections import OrderedDict
import threading

import config
import metrics
import orders

_lock = threading.Lock()
# Rendered reports by the request's path. The path holds the query string, and dashboards add a
# cache-buster to it (`?_=<timestamp>`), so nearly every request is a new key.
_cache = OrderedDict()


def report(path, order_id):
    """The report of an order, rendered once per cache key."""
    with _lock:
        if path in _cache:
            _cache.move_to_end(path)
            return _cache[path]
    order = orders.get_order(order_id)
    if order is None:
        return None
    text = render(order)
    with _lock:
        _cache[path] = text
        if config.REPORT_CACHE_MAX > 0:
            while len(_cache) > config.REPORT_CACHE_MAX:
                _cache.popitem(last=False)
        metrics.REPORT_CACHE_ENTRIES.set(len(_cache))
    return text


def render(order):
    rows = [f"order {order['id']} for {order['customer']}, total {order['totalCents'] / 100:.2f}"]
    for line in order["lines"]:
        item = line["item"]
        rows.append(f"  {line['quantity']} x {item['name']} at {item['priceCents'] / 100:.2f}")
        # Ninety days of stock history per item: what makes a report worth caching.
        for day in range(90):
            stock = (item["stock"] + day * 3) % 41
            rows.append(f"    day -{day:02d} stock {stock:3d} reserved {day % 5} item {item['id']:03d} " + "." * 40)
    return "\n".join(rows) + "\n"


def cache_entries():
    with _lock:
        return len(_cache)
