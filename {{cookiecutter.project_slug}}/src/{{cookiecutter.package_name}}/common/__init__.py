"""The bottom layer, shared by every other part: the error hierarchy (each error knows its HTTP
status), JSON encoding and the request-id context variable. It imports nothing from this package.
"""
