"""Orders and their lines, with the item details the inventory service knows."""

import config
import inventory_client

# The shop's recent orders: which items, how many. Kept in memory: the lab is about the calls.
ORDERS = {
    order_id: {
        "id": order_id,
        "customer": f"customer-{order_id * 7 % 23:02d}",
        "lines": [{"itemId": (order_id * 11 + n * 7) % 50 + 1, "quantity": n + 1} for n in range(4)],
    }
    for order_id in range(1, 6)
}


def list_orders():
    """GET /api/orders: every recent order with its lines' item details."""
    if config.INVENTORY_BATCH:
        # The fix: every item of every order in one request.
        items = inventory_client.fetch_items(sorted({line["itemId"] for order in ORDERS.values()
                                                     for line in order["lines"]}))
        return [order_with_items(order, items) for order in ORDERS.values()]
    return [order_with_items(order) for order in ORDERS.values()]


def get_order(order_id):
    order = ORDERS.get(order_id)
    if order is None:
        return None
    if config.INVENTORY_BATCH:
        return order_with_items(order, inventory_client.fetch_items([line["itemId"] for line in order["lines"]]))
    return order_with_items(order)


def order_with_items(order, items=None):
    if items is not None:
        lines = [dict(line, item=items.get(line["itemId"])) for line in order["lines"]]
    else:
        # One request to the inventory per line: the loop hides a network round trip.
        lines = [dict(line, item=inventory_client.fetch_item(line["itemId"])) for line in order["lines"]]
    total = sum(line["quantity"] * line["item"]["priceCents"] for line in lines if line["item"])
    return dict(order, lines=lines, totalCents=total)
