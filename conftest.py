"""Test ordering: the book checks in tests/book read what the smoke notebooks produced, so they run last."""


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: "tests/book/" in item.nodeid.replace("\\", "/"))
